"""Parts of the serving benchmarks' shared code (``bench/serving_common.py`` re-exports them)."""
