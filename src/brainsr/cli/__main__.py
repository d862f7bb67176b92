"""``python -m brainsr.cli``: the ``brainsr`` command."""

import sys

from brainsr.cli import main

sys.exit(main())
