import sys

from vsearch_app.cli.main import main

sys.exit(main())
