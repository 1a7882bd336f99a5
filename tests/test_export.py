"""Exported models (jax.export, SavedModel, TFLite) return the landmarks and confidence of the
JAX predict function on real face crops; the CLI exports a workdir and a PyTorch checkpoint."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pipnet_jax import export  # noqa: E402
from pipnet_jax.meanface import neighbor_indices, read_meanface  # noqa: E402
from pipnet_jax.models import PIPNet  # noqa: E402
from pipnet_jax.bench.reference_torch import PIPNetTorch, randomize_batchnorm  # noqa: E402
from pipnet_jax.torch_port import from_torch_state_dict  # noqa: E402
from pipnet_jax.inference import make_predict_fn  # noqa: E402
from workdirs import write_workdir  # noqa: E402

MEANFACE = "pipnet_repo_assets/data/WFLW/meanface.txt"
TOL = 1e-4
SHAPE_ERROR = r"expects uint8 RGB images of shape \({}, {size}, {size}, 3\)"


@pytest.fixture(scope="module")
def reference(shared_data):
    """ResNet-18 PIPNet with random weights and random BatchNorm statistics (from the torch
    reference, so BN is not the identity) and the real WFLW neighbour table."""
    torch.manual_seed(0)
    net = PIPNetTorch(98, "resnet18")
    randomize_batchnorm(net, torch.Generator().manual_seed(1))
    model = PIPNet(98, "resnet18")
    variables = from_torch_state_dict(net.state_dict(), model)
    neighbors = neighbor_indices(read_meanface(shared_data / MEANFACE), 10)
    return model, variables, neighbors, net.state_dict()


def crops(wflw_crops, size, count):
    import cv2
    faces = wflw_crops[0][:count]
    return faces if size == 256 else np.stack([cv2.resize(f, (size, size)) for f in faces])


def jax_outputs(reference, images):
    model, variables, neighbors, _ = reference
    predict = make_predict_fn(model, neighbors, images.shape[1])
    landmarks, confidence = (np.asarray(a) for a in predict(variables, images))
    assert np.ptp(landmarks) > 0.1  # varied predictions, so a wrong graph would show
    return landmarks, confidence


def assert_same(got, want, what):
    for g, w, name in zip(got, want, ("landmarks", "confidence")):
        g = np.asarray(g)
        assert g.shape == w.shape, f"{what} {name}"
        np.testing.assert_allclose(g, w, rtol=0, atol=TOL, err_msg=f"{what} {name}")


@pytest.mark.slow
def test_jax_export_one_symbolic_artifact_any_batch(tmp_path, reference, wflw_crops):
    model, variables, neighbors, _ = reference
    path = str(tmp_path / "pipnet.jax")
    export.export_jax(path, model, variables, neighbors, input_size=128, platforms=("cpu", "cuda"))
    meta = json.loads((tmp_path / "pipnet.jax.json").read_text())
    assert meta["num_landmarks"] == 98 and meta["backbone"] == "resnet18"
    assert meta["input_size"] == 128 and meta["net_stride"] == 32 and meta["batch_size"] == "any"
    assert meta["neighbors_shape"] == [98, 10] and meta["platforms"] == ["cpu", "cuda"]
    assert meta["jax_version"]

    predict = export.load_jax(path)
    faces = crops(wflw_crops, 128, 3)
    for batch in (2, 3):
        assert_same(predict(faces[:batch]), jax_outputs(reference, faces[:batch]), f"jax batch {batch}")
    for bad in (crops(wflw_crops, 256, 1), faces.astype(np.float32), faces[0]):
        with pytest.raises(ValueError, match=SHAPE_ERROR.format("B", size=128)):
            predict(bad)

    export.export_jax(path, model, variables, neighbors, input_size=128, batch_size=2)
    assert_same(export.load_jax(path)(faces[:2]), jax_outputs(reference, faces[:2]), "jax fixed")
    with pytest.raises(ValueError, match=SHAPE_ERROR.format(2, size=128)):
        export.load_jax(path)(faces)


@pytest.mark.slow
def test_jax_export_needs_no_tensorflow(tmp_path):
    """GPU machines have no TensorFlow: export and load with `import tensorflow` blocked."""
    code = f"""
import sys
sys.modules["tensorflow"] = None  # any import of it now raises ImportError
import jax, jax.numpy as jnp, numpy as np
from pipnet_jax import export
from pipnet_jax.models import PIPNet
model = PIPNet(5, "resnet18", num_neighbors=2)
variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
neighbors = np.array([[1, 2], [0, 2], [1, 3], [2, 4], [3, 2]])
export.export_jax({str(tmp_path / "tiny.jax")!r}, model, variables, neighbors, input_size=64)
landmarks, confidence = export.load_jax({str(tmp_path / "tiny.jax")!r})(np.zeros((2, 64, 64, 3), np.uint8))
assert landmarks.shape == (2, 5, 2) and confidence.shape == (2, 5)
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_saved_model(tmp_path, reference, wflw_crops):
    model, variables, neighbors, _ = reference
    path = str(tmp_path / "saved_model")
    export.export_saved_model(path, model, variables, neighbors, input_size=128)
    assert export.read_metadata(path)["format"] == "saved_model"
    predict = export.load_saved_model(path)
    faces = crops(wflw_crops, 128, 3)
    assert_same(predict(faces), jax_outputs(reference, faces), "saved_model")
    with pytest.raises(ValueError, match=SHAPE_ERROR.format("B", size=128)):
        predict(crops(wflw_crops, 256, 1))


@pytest.mark.slow
def test_tflite_full_size(tmp_path, reference, wflw_crops):
    """256 px as the released models run; one any-batch file, resized between calls."""
    model, variables, neighbors, _ = reference
    path = str(tmp_path / "pipnet.tflite")
    export.export_tflite(path, model, variables, neighbors, input_size=256)
    assert export.read_metadata(path)["ops"] == "TFLITE_BUILTINS"
    predict = export.load_tflite(path, num_threads=2)
    faces = crops(wflw_crops, 256, 3)
    for batch in (3, 1):
        assert_same(predict(faces[:batch]), jax_outputs(reference, faces[:batch]), f"tflite batch {batch}")
    with pytest.raises(ValueError, match=SHAPE_ERROR.format("B", size=256)):
        predict(crops(wflw_crops, 128, 1))
    # A fresh interpreter (default threads, XNNPACK) runs a batch: finite outputs, right shapes.
    landmarks, confidence = export.load_tflite(path)(faces[:2])
    assert landmarks.shape == (2, 98, 2) and confidence.shape == (2, 98)
    assert np.isfinite(landmarks).all() and np.isfinite(confidence).all()


def test_cli_workdir_and_torch_checkpoint(tmp_path, reference, wflw_crops, shared_data):
    model, variables, neighbors, state_dict = reference
    faces = crops(wflw_crops, 128, 2)
    want = jax_outputs(reference, faces)

    # A workdir as training leaves it; the optimizer state is restored but not needed.
    workdir = write_workdir(tmp_path / "run", variables, (shared_data / MEANFACE).read_text(), step=7)
    out = str(tmp_path / "from_workdir.jax")
    export.main(["--workdir", str(workdir), "--format", "jax", "--out", out])
    assert_same(export.load_jax(out)(faces), want, "cli workdir")

    pth = tmp_path / "epoch59.pth"
    torch.save(state_dict, pth)
    out = str(tmp_path / "from_torch.jax")
    meta = export.main(["--torch_checkpoint", str(pth), "--num_landmarks", "98", "--backbone",
                        "resnet18", "--meanface", str(shared_data / MEANFACE), "--input_size",
                        "128", "--batch_size", "2", "--format", "jax", "--out", out])
    assert meta["batch_size"] == 2 and meta["input_size"] == 128
    assert_same(export.load_jax(out)(faces), want, "cli torch")

    with pytest.raises(SystemExit):  # --meanface is required with --torch_checkpoint
        export.main(["--torch_checkpoint", str(pth), "--num_landmarks", "98", "--format", "jax",
                     "--out", out])


def test_cli_refuses_a_batch_size_below_one(capsys):
    for bad in ("-2", "0"):
        with pytest.raises(SystemExit) as exit_info:
            export.parse_args(["--workdir", "w", "--format", "jax", "--out", "m.jax", "--batch_size", bad])
        assert exit_info.value.code == 2
        assert f"--batch_size {bad}: expected a batch size >= 1" in capsys.readouterr().err
