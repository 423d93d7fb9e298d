"""The reliability suite (issue 9): what the stack survives, measured.

Each scenario module has ``run(quick: bool, workdir: Path) -> Section``; ``python -m reliability``
runs them and writes their figures into RELIABILITY.md; ``tests/reliability/`` runs the quick
versions inside ``make test`` and fails on any failed check.
"""
