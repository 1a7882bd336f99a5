"""`export --format onnx`: ONNX Runtime returns the JAX landmarks and confidence on real face
crops at two batch sizes from one file (a PyTorch .pth and a workdir, through the CLI); the
compat layout returns the PyTorch reference's five raw heads (NCHW); the core imports without
the ONNX packages (requirements-onnx.txt, installed with `pip install --no-deps`)."""
import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("jax2onnx")
pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from pipnet_jax import export  # noqa: E402
from pipnet_jax.bench.reference_torch import PIPNetTorch  # noqa: E402
from pipnet_jax.export_onnx import COMPAT_OUTPUTS  # noqa: E402
from pipnet_jax.images import normalize_images  # noqa: E402
from test_export import MEANFACE, SHAPE_ERROR, assert_same, crops, jax_outputs, reference  # noqa: E402,F401
from workdirs import write_workdir  # noqa: E402

COMPAT_RTOL = 1e-4  # max |onnx - torch| / max |torch|, per output


def graph_io(path):
    model = onnx.load(path)
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return ({i.name: dims(i) for i in model.graph.input}, {o.name: dims(o) for o in model.graph.output},
            {n.op_type for n in model.graph.node})


def test_end_to_end_from_torch_checkpoint(tmp_path, reference, wflw_crops, shared_data):
    """The released models' size (256 px): one symbolic-batch file, batches 3 and 1."""
    *_, state_dict = reference
    pth = tmp_path / "epoch59.pth"
    torch.save(state_dict, pth)
    out = str(tmp_path / "pipnet.onnx")
    meta = export.main(["--torch_checkpoint", str(pth), "--num_landmarks", "98", "--meanface",
                        str(shared_data / MEANFACE), "--format", "onnx", "--out", out])
    assert meta["layout"] == "end_to_end" and meta["batch_size"] == "any"
    assert json.loads((tmp_path / "pipnet.onnx.json").read_text())["format"] == "onnx"
    inputs, outputs, ops = graph_io(out)
    assert inputs == {"images": ["B", 256, 256, 3]}
    assert outputs == {"landmarks": ["B", 98, 2], "confidence": ["B", 98]}
    assert "Sqrt" not in ops  # BatchNorm folded into the convolutions by the simplification

    predict = export.load_onnx(out, num_threads=2)
    faces = crops(wflw_crops, 256, 3)
    want = jax_outputs(reference, faces)  # per-face results: slices of one JAX call
    for batch in (3, 1):
        assert_same(predict(faces[:batch]), [w[:batch] for w in want], f"onnx batch {batch}")
    for bad in (crops(wflw_crops, 128, 1), faces.astype(np.float32)):
        with pytest.raises(ValueError, match=SHAPE_ERROR.format("B", size=256)):
            predict(bad)


@pytest.mark.slow
def test_end_to_end_from_workdir(tmp_path, reference, wflw_crops, shared_data):
    """A workdir as training leaves it, exported by --mode=export; 128 px, batches 2 and 5."""
    _, variables, _, _ = reference
    workdir = write_workdir(tmp_path / "run", variables, (shared_data / MEANFACE).read_text(), step=3)
    # as `--mode=export --config.export.format=onnx` runs it
    config = ml_collections.ConfigDict({"export": {"format": "onnx", "out": "", "batch_size": 0,
                                                   "platforms": "cpu"}})
    assert export.run_export(config, str(workdir))["layout"] == "end_to_end"
    out = str(workdir / "export" / "pipnet.onnx")
    faces = crops(wflw_crops, 128, 5)
    want = jax_outputs(reference, faces)
    predict = export.load_onnx(out, num_threads=2)
    for batch in (2, 5):
        assert_same(predict(faces[:batch]), [w[:batch] for w in want], f"onnx workdir batch {batch}")


@pytest.mark.slow
def test_compat_layout_equals_torch_heads(tmp_path, reference, wflw_crops, shared_data):
    """Normalised NCHW in, outputs_cls/x/y/nb_x/nb_y (NCHW) out: the original model's outputs.
    Symbolic batch (2 and 4 from one file), then a fixed batch at opset 11 (older runtimes)."""
    model, variables, neighbors, state_dict = reference
    net = PIPNetTorch(98, "resnet18").eval()
    net.load_state_dict(state_dict)
    faces = crops(wflw_crops, 128, 4)
    images = np.asarray(normalize_images(faces)).transpose(0, 3, 1, 2).copy()
    with torch.no_grad():
        want = [t.numpy() for t in net(torch.from_numpy(images))]

    path = str(tmp_path / "compat.onnx")
    meta = export.export_onnx(path, model, variables, neighbors, input_size=128, layout="compat")
    assert meta["neighbor_table"] == neighbors.tolist() and meta["input_name"] == "img"
    inputs, outputs, ops = graph_io(path)
    assert inputs == {"img": ["B", 3, 128, 128]}
    assert outputs == {name: ["B", 98 * (10 if "nb" in name else 1), 4, 4] for name in COMPAT_OUTPUTS}
    assert ops == {"Conv", "Relu", "Add", "Pad", "MaxPool"}  # what torch.onnx.export gives
    predict = export.load_onnx(path, num_threads=2)
    assert predict.layout == "compat"
    for batch in (2, 4):
        for got, w, name in zip(predict(images[:batch]), want, COMPAT_OUTPUTS):
            assert got.shape == w[:batch].shape, name
            err = np.abs(got - w[:batch]).max() / np.abs(w[:batch]).max()
            assert err <= COMPAT_RTOL, f"{name} batch {batch}: relative error {err:.2e}"

    pth = tmp_path / "net.pth"
    torch.save(state_dict, pth)
    export.main(["--torch_checkpoint", str(pth), "--num_landmarks", "98",
                 "--meanface", str(shared_data / MEANFACE), "--input_size", "128",
                 "--format", "onnx", "--onnx_layout", "compat", "--onnx_opset", "11",
                 "--batch_size", "4", "--out", path])
    assert onnx.load(path).opset_import[0].version == 11
    got = export.load_onnx(path, num_threads=2)(images)
    for g, w, name in zip(got, want, COMPAT_OUTPUTS):
        assert np.abs(g - w).max() / np.abs(w).max() <= COMPAT_RTOL, f"{name} opset 11"
    with pytest.raises(ValueError, match=r"float32 NCHW images of shape \(4, 3, 128, 128\)"):
        export.load_onnx(path)(images[:2])


def test_core_imports_without_onnx_packages():
    """With jax2onnx, onnx and onnxruntime blocked, export.py still imports; asking for ONNX
    then fails with an ImportError naming the package."""
    code = """
import sys
for name in ("jax2onnx", "onnx", "onnxruntime"):
    sys.modules[name] = None  # any import of it now raises ImportError
import numpy as np
from pipnet_jax import export
from pipnet_jax.models import PIPNet
neighbors = np.array([[1, 2], [0, 2], [1, 3], [2, 4], [3, 2]])
try:
    export.export_onnx("unused.onnx", PIPNet(5, num_neighbors=2), {}, neighbors, input_size=64)
except ImportError as e:
    print("ImportError", e)
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ImportError" in result.stdout and "jax2onnx" in result.stdout
