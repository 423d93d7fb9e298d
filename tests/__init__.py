"""The test suite (not installed: run it from the repository root)."""
