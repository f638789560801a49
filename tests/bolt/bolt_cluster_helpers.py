"""The cluster tests' helpers (``tests/cluster/conftest.py``: ``start_cluster``,
``wait_for``, ...) for the Bolt tests that run a real cluster. Loaded from its path, once:
both test folders have a module named ``conftest``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_CLUSTER_CONFTEST = Path(__file__).resolve().parent.parent / "cluster" / "conftest.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quiver_cluster_helpers", _CLUSTER_CONFTEST)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


helpers = _load()
