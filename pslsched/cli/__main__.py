"""``python -m pslsched.cli``: the `sched` command."""

import sys

from pslsched.cli import main

sys.exit(main())
