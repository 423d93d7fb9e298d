"""``python -m account_setup.execution_policy generate|apply``."""

import sys

from account_setup.execution_policy.cli import main

sys.exit(main())
