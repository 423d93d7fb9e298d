"""``python -m training.launch``: see :mod:`training.launch.cli`."""

import sys

from training.launch.cli import main

sys.exit(main())
