import sys

from local_stage.cli import main

sys.exit(main())
