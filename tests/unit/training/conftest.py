"""The training scripts import their siblings as top-level modules (``import torch_models``, ``from
common import ...``), exactly as SageMaker runs them from ``source_dir``; the tests do the same."""

import sys
from pathlib import Path

TRAINING_DIR = Path(__file__).resolve().parents[3] / "training"
if str(TRAINING_DIR) not in sys.path:
    sys.path.insert(0, str(TRAINING_DIR))
