"""Benchmarks of the serving and training paths (`make bench`); results in bench/results/."""
