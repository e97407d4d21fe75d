"""Imports run downhill: launcher -> api, watcher, broadcaster -> desks -> embedded."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# For each package, the first-party packages it may never import.
FORBIDDEN = {
    "embedded": {"desks", "api", "watcher", "broadcaster", "launcher"},
    "desks": {"api", "watcher", "broadcaster", "launcher"},
    "api": {"watcher", "broadcaster", "launcher"},
    "watcher": {"api", "broadcaster", "launcher"},
    "broadcaster": {"api", "watcher", "launcher"},
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_a_package_imports_nothing_above_it(package):
    for path in (ROOT / package).rglob("*.py"):
        uphill = imported(path) & FORBIDDEN[package]
        assert not uphill, f"{path.relative_to(ROOT)} imports {sorted(uphill)}"
