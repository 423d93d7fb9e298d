"""`pip install -e .` installs every package of the project, and only those: the package list in
pyproject.toml is written out (tests/ stays out), so a new package must be added to it."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]


def test_every_package_folder_is_installed():
    config = _setuptools()
    listed = set(config["packages"])
    package_dirs = {name: Path(folder) for name, folder in config.get("package-dir", {}).items()}
    roots = {name.split(".")[0] for name in listed}
    # A new top-level package is a folder beside app.py holding an __init__.py.
    roots |= {init.parent.name for init in REPO.glob("*/__init__.py")} - {"tests"}
    on_disk = set()
    for root in roots:
        base = REPO / package_dirs.get(root, Path(root))
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base)
            on_disk.add(".".join((root, *relative.parts)))
    assert on_disk - listed == set(), "add these packages to [tool.setuptools] packages"
    assert listed - on_disk == set(), "these listed packages have no folder with __init__.py"


def test_the_tests_are_not_installed():
    assert not any(
        name == "tests" or name.startswith("tests.") for name in _setuptools()["packages"]
    )
