"""`python -m gbdesk.ui [--wizard] [--background]` opens the desktop app."""

from gbdesk.ui.app import main

raise SystemExit(main())
