"""Shared pytest fixtures."""
import os
import pathlib
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Let plain `pytest` (not only `python -m pytest` from the root) import pipnet_jax.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
# Test helpers (tests/support) and shared test modules import as top-level modules, also
# from tests/integration: `from in_memory import ...`, `from test_annotations import ...`.
for _path in (REPO_ROOT / "tests" / "support", REPO_ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

INTEGRATION = REPO_ROOT / "tests" / "integration"


def pytest_collection_modifyitems(config, items):
    """Everything under tests/integration is slow; a module that imports torch is `torch`."""
    for item in items:
        if INTEGRATION in pathlib.Path(item.fspath).parents:
            item.add_marker(pytest.mark.slow)
        module = getattr(item, "module", None)
        if module is not None and ("torch" in vars(module) or any(
                getattr(v, "__module__", "").startswith("pipnet_jax.bench.reference_torch")
                for v in vars(module).values())):
            item.add_marker(pytest.mark.torch)


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """Shared data folder: $PIPNET_SHARED_DATA, else ../shared/data next to the repo."""
    path = pathlib.Path(os.environ.get("PIPNET_SHARED_DATA",
                                       REPO_ROOT.parent / "shared" / "data")).resolve()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent (set PIPNET_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def wflw_crops(shared_data):
    """Real WFLW test faces cropped as PIPNet does (spec 11.2, the recorded crop boxes):
    uint8 RGB (K, 256, 256, 3) and normalised GT landmarks (K, 98, 2). First 8 faces."""
    import cv2
    import numpy as np

    root = shared_data / "wflw_subset"
    lines = (root / "annotations" / "wflw_test_subset_faces.txt").read_text().splitlines()[:8]
    crops, landmarks = [], []
    for line in lines:
        tok = line.split()
        lm = np.array(tok[:196], np.float64).reshape(98, 2)
        xmin, ymin, xmax, ymax = map(float, tok[196:200])
        img = cv2.imread(str(root / "WFLW_images" / tok[210]))
        crop = img[int(ymin):int(ymax), int(xmin):int(xmax)]
        crops.append(cv2.cvtColor(cv2.resize(crop, (256, 256)), cv2.COLOR_BGR2RGB))
        landmarks.append((lm - [xmin, ymin]) / [xmax - xmin, ymax - ymin])
    return np.stack(crops), np.stack(landmarks).astype(np.float32)


@pytest.fixture(scope="session")
def synthetic_64_16(tmp_path_factory):
    """A built synthetic set, 64 train and 16 test faces, seed 0 (the end-to-end runs' data)."""
    from pipnet_jax.data import builders
    path = tmp_path_factory.mktemp("tfds")
    builders.prepare_synthetic(path, 64, 16, seed=0)
    return str(path)
