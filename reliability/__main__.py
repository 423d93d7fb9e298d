"""Run the reliability suite and write RELIABILITY.md.

    python -m reliability [--quick] [--only load,faults,...] [--out RELIABILITY.md]

Scenarios run one after another (each measures on the whole machine), in a scratch directory
that is removed afterwards unless --keep is given. Exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from reliability.report import (
    Section,
    merge,
    provenance,
    read_json,
    section_markdown,
    write_json,
    write_markdown,
)

SCENARIOS = ("load", "faults", "bad_input", "training_faults", "teardown")

PREAMBLE = """
What the stack survives, measured by `make reliability-report` (`python -m reliability`): load past the
throttle, faults injected under load, malformed requests, killed and corrupted training runs, and
what `cdk destroy` leaves. The load, fault and bad-input scenarios run against the local stage
(the synthesized stack served on this machine: API front, the real Lambda code, runtime API and
model containers; docs/local-stage.md), so figures are this machine's, not AWS's; what they show is
how each layer answers, not how fast AWS is. `make reliability` (part of `make test`) runs a
shorter version of every scenario (tests/reliability/) and fails on any failed check.
"""


def _publish(section: Section, results: Path, report_dir: Path) -> list[tuple[str, Path]]:
    """Copy the section's charts out of its scratch directory into ``results`` and return
    them as paths relative to the report."""
    results.mkdir(parents=True, exist_ok=True)
    published = []
    for caption, image in section.figures:
        target = results / f"{section.key}-{image.name}"
        shutil.copyfile(image, target)
        published.append((caption, Path(os.path.relpath(target.resolve(), report_dir.resolve()))))
    return published


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reliability",
        description="Run the reliability suite (load, faults, bad input, training faults, "
        "teardown) and write its figures into RELIABILITY.md.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the short version make test runs (fewer, shorter steps)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run (default: all of {', '.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("RELIABILITY.md"), help="markdown report to write"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=Path("reliability/results/latest.json"),
        help="the same figures as JSON",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )

    # A run of some scenarios keeps the others' last results: read them before measuring anything.
    try:
        saved = read_json(args.json)
    except ValueError as exc:
        parser.error(str(exc))

    scratch = Path(tempfile.mkdtemp(prefix="reliability-"))
    sections: list[Section] = []
    try:
        for key in chosen:
            module = importlib.import_module(f"reliability.{key}")
            workdir = scratch / key
            workdir.mkdir()
            print(f"==> {key}", flush=True)
            start = time.monotonic()
            section: Section = module.run(quick=args.quick, workdir=workdir)
            section.seconds = time.monotonic() - start
            section.measured = provenance(args.quick)
            section.figures = _publish(section, args.json.parent, args.out.parent)
            sections.append(section)
            print(section_markdown(section), flush=True)
    finally:
        if args.keep:
            print(f"scratch directory kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report = merge(saved, sections, SCENARIOS)
    write_markdown(report, args.out, preamble=PREAMBLE)
    write_json(report, args.json)
    kept = [s.title for s in report if s not in sections]
    if kept:
        print(f"==> kept the last results of: {', '.join(kept)}")
    failed = [s.title for s in sections if not s.passed]
    print(
        f"==> {args.out}: " + (f"FAILED: {', '.join(failed)}" if failed else "every check passed")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
