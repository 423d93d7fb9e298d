"""The reliability suite: what the stack survives (load, faults, bad input, training faults,
teardown), measured, so its guarantees are figures rather than claims.

Each scenario module has ``run(quick: bool, workdir: Path) -> Section``; ``python -m reliability``
runs them and writes their figures into RELIABILITY.md; ``tests/reliability/`` runs the quick
versions inside ``make test`` and fails on any failed check.
"""
