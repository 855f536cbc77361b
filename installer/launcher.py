"""The frozen app's entry script: the same as ``vsearch`` (no command opens the desktop app, a command runs it).

Every executable in the bundle starts here; on Windows the windowed VSearch.exe and the console vsearch-cli.exe are
two builds of this one script. A windowed build has no console, so sys.stdout and sys.stderr are None: they get a
sink before anything (logging, a progress bar, a warning) writes to them.
"""

import sys

from vsearch_app.cli.main import main
from vsearch_app.gui.app import ensure_std_streams

if __name__ == "__main__":
    ensure_std_streams()
    sys.exit(main())
