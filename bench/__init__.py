"""Benchmarks run on demand (`make bench`): each module here is one benchmark script."""
