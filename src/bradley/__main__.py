import sys

from bradley.cli import main

sys.exit(main())
