"""The consensus core imports nothing outside the standard library (DESIGN.md): that is
what keeps it pure, fast and deterministic in the simulator."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

RAFT = Path(__file__).resolve().parents[2] / "raft"


def non_stdlib_imports(source: str) -> list[str]:
    """Top-level module names imported by `source` that are neither stdlib nor raft itself."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0:
                continue  # relative: inside the raft package
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top != "raft" and top not in sys.stdlib_module_names:
                found.append(name)
    return found


def test_raft_package_imports_only_the_standard_library_and_itself() -> None:
    sources = sorted(RAFT.rglob("*.py"))
    assert len(sources) >= 10, f"raft sources not found under {RAFT}"
    offenders = {
        str(path.relative_to(RAFT.parent)): imports
        for path in sources
        if (imports := non_stdlib_imports(path.read_text()))
    }
    assert offenders == {}


def test_import_checker_flags_third_party_and_sibling_packages() -> None:
    source = (
        "import json\nimport grpc\nfrom proto import raft_pb2\nfrom raft.types import Entry\n"
        "from . import log\nimport os.path\n"
        "def late():\n    import numpy\n"
    )
    assert non_stdlib_imports(source) == ["grpc", "proto", "numpy"]
