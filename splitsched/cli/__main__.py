"""``python -m splitsched.cli``: the `sched` command."""

import sys

from splitsched.cli import main

sys.exit(main())
