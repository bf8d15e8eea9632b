"""Every third-party module the shipped packages import is a declared runtime dependency.

The demo installs without the dev extra: a module that only arrives with a test tool works in
the tests and fails on a newcomer's machine.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires

from tests.conftest import ROOT

PACKAGES = ("bydata", "schemas", "store", "ingest", "api", "simulators")


def _imported_top_level_modules() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared_with_their_requirements() -> set[str]:
    """Declared runtime dependencies and, transitively, what they require (their modules are there too)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    todo = [re.split(r"[ <>=!~;\[]", spec, maxsplit=1)[0] for spec in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        name = _normalise(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:  # a requirement for another platform (an environment marker)
            continue
        for req in reqs:
            if "extra ==" not in req:
                todo.append(re.split(r"[ <>=!~;\[(]", req, maxsplit=1)[0])
    return seen


def test_every_imported_distribution_is_declared() -> None:
    declared = _declared_with_their_requirements()
    owners = packages_distributions()
    missing = {}
    for module, where in _imported_top_level_modules().items():
        if module in sys.stdlib_module_names or module in PACKAGES or module == "__future__":
            continue
        distributions = {_normalise(d) for d in owners.get(module, [])}
        assert distributions, f"{module} (imported in {where}) belongs to no installed distribution"
        if not distributions & declared:
            missing[module] = where
    assert not missing, f"imported but not declared in pyproject.toml dependencies: {missing}"
