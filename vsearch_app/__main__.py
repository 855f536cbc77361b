"""`python -m vsearch_app`: the same as `vsearch` (with no command, the desktop app)."""

import sys

from vsearch_app.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
