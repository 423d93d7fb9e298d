"""What AWS's Ray Serve image can run: its Python and its packages (``data/ray_serve_image_packages.txt``).

Endpoints run with network isolation, so the container's start-up ``pip install -r
code/requirements.txt`` cannot download anything: an artifact's code may import only the standard
library of the image's Python, the image's packages and its own ``code/`` modules, and a
requirement is met only when the image's version satisfies it. ``model_export`` refuses anything
else at export time, and the local stage refuses it before starting Ray.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

PACKAGES_FILE = Path(__file__).parent / "data" / "ray_serve_image_packages.txt"
IMAGE_PYTHON = (3, 13)
# Standard-library modules removed by Python 3.12 / 3.13 (PEP 594, PEP 632): present in the
# interpreter that exports, absent from the image's.
REMOVED_STDLIB = frozenset(
    {
        *("aifc", "asynchat", "asyncore", "audioop", "cgi", "cgitb", "chunk", "crypt"),
        *("distutils", "imghdr", "imp", "lib2to3", "mailcap", "msilib", "nis", "nntplib"),
        *("ossaudiodev", "pipes", "smtpd", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib"),
    }
)


@dataclass(frozen=True)
class ImagePackage:
    name: str
    version: str
    imports: tuple[str, ...]


@cache
def image_packages() -> dict[str, ImagePackage]:
    """``{canonical distribution name: ImagePackage}`` from the committed list."""
    packages: dict[str, ImagePackage] = {}
    for line in PACKAGES_FILE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        spec, *imports = line.split()
        name, _, version = spec.partition("==")
        packages[canonicalize_name(name)] = ImagePackage(name, version, tuple(imports))
    return packages


def importable_modules() -> frozenset[str]:
    """Top-level module names the image's Python can import (stdlib + packages)."""
    stdlib = set(sys.stdlib_module_names) - REMOVED_STDLIB
    shipped = {name for pkg in image_packages().values() for name in pkg.imports}
    return frozenset(stdlib | shipped)


def unmet_requirements(text: str) -> list[str]:
    """The ``requirements.txt`` lines the image does not satisfy (name absent or version off)."""
    unmet = []
    packages = image_packages()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            unmet.append(f"{line!r} (pip options need a package index)")
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            unmet.append(f"{line!r} (not a requirement pip reads offline)")
            continue
        shipped = packages.get(canonicalize_name(requirement.name))
        if shipped is None:
            unmet.append(f"{line!r} (not in the image)")
        elif requirement.url or not requirement.specifier.contains(
            shipped.version, prereleases=True
        ):
            unmet.append(f"{line!r} (the image has {shipped.name}=={shipped.version})")
    return unmet


def unknown_imports(code_dir: Path) -> list[str]:
    """``file:line: module`` for each import in ``code_dir``'s ``.py`` files the image lacks.

    Relative imports and modules that are files or packages inside ``code_dir`` are the
    artifact's own. A file that does not parse on Python 3.13's grammar is reported too.
    """
    own = {p.stem for p in code_dir.glob("*.py")} | {
        p.name for p in code_dir.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    }
    allowed = importable_modules() | own
    problems = []
    for path in sorted(code_dir.rglob("*.py")):
        rel = path.relative_to(code_dir)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(rel))
        except SyntaxError as exc:
            problems.append(f"{rel}:{exc.lineno}: does not parse ({exc.msg})")
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".", 1)[0]
                if top not in allowed:
                    problems.append(f"{rel}:{node.lineno}: imports {top!r}")
    return problems
