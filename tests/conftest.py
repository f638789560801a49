"""Fixtures shared by the whole test suite.

pytest's root directory is the repository root (pyproject.toml holds its configuration);
the packages under test import as installed by `make venv`, and the repository root is also
on pytest's `pythonpath`, so a package folder added since the install imports too.
"""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    """The repository root: where `make proto` runs protoc and `quiver` commands run."""
    return REPO_ROOT
