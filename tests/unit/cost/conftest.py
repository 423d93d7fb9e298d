import sys
from pathlib import Path

# templates.py beside the tests (import mode importlib puts no test folder on sys.path)
sys.path.insert(0, str(Path(__file__).resolve().parent))
