"""Suite-wide settings: keep test output free of jsii's Node end-of-life banner."""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
