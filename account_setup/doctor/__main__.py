"""``python -m account_setup.doctor``: the pre-deploy checks' command line."""

import sys

from account_setup.doctor.cli import main

sys.exit(main())
