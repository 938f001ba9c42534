"""Entry point of the frozen app: the same as the `gbdesk` command."""

import multiprocessing
import sys

from gbdesk.cli import main

if __name__ == "__main__":
    # A frozen app re-runs this file for every multiprocessing child; this makes the child
    # run its task instead of a second copy of the CLI.
    multiprocessing.freeze_support()
    sys.exit(main())
