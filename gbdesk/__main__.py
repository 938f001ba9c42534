"""`python -m gbdesk` is the same as the `gbdesk` command."""

from gbdesk.cli import main

raise SystemExit(main())
