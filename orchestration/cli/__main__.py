"""`python -m orchestration.cli`: the same command line as `oppwh`."""

import sys

from orchestration.cli import main

sys.exit(main())
