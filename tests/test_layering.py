"""The direction of the data flow holds in the imports: lower layers never import upper ones
(the TraceQL front end below the querier that runs it, storage below both, the API on top)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import threadline

ROOT = Path(threadline.__file__).parent
# package -> packages it must never import
FORBIDDEN = {
    "traceql": {"querier", "api", "receivers", "ingester", "storage", "distributor"},
    "logql": {"querier", "api", "receivers", "ingester", "storage", "distributor", "logstore"},
    "logstore": {"querier", "api", "receivers", "distributor"},
    "storage": {"querier", "api", "receivers", "traceql", "distributor"},
    "model": {"querier", "api", "receivers", "traceql", "storage", "ingester"},
    "querier": {"api", "receivers", "distributor"},
    "receivers": {"querier", "api", "storage"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m.split(".")[1] for m in found if m.startswith("threadline.") and m.count(".") >= 1}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports threadline.{target}"
        for path in sorted((ROOT / package).glob("*.py"))
        for target in _imports(path) & FORBIDDEN[package]
    }
    assert not wrong
