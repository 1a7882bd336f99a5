"""Shared pytest fixtures."""
import os
import pathlib
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Let plain `pytest` (not only `python -m pytest` from the root) import pipnet_jax.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """Shared data folder: $PIPNET_SHARED_DATA, else ../shared/data next to the repo."""
    path = pathlib.Path(os.environ.get("PIPNET_SHARED_DATA",
                                       REPO_ROOT.parent / "shared" / "data")).resolve()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent (set PIPNET_SHARED_DATA)")
    return path
