"""The benchmark runs end to end on a tiny config (needs the torch dev dependency)."""
import pytest

pytest.importorskip("torch")

from pipnet_jax.bench.inference import BACKENDS, format_table, run_benchmark  # noqa: E402


def test_run_benchmark_tiny():
    logs = []
    rows = run_benchmark(backbone="resnet18", image_size=64, batch_sizes=[1], repeats=1,
                         warmup=1, log=logs.append, torch_compile=False, tflite=False)
    assert [r["backend"] for r in rows] == list(BACKENDS[:3])
    assert rows[0]["dtype"] == "float32" and 0 < rows[0]["peak_fraction"] < 1
    assert all(r["batch"] == 1 and r["median_ms"] > 0 and r["images_per_s"] > 0 for r in rows)
    assert next(r for r in rows if r["backend"] == "torch_eager")["speedup"] == 1.0
    assert any("within 1e-4" in line for line in logs)
    assert "jax_jit" in format_table(rows)


@pytest.mark.slow
def test_train_benchmark_row():
    from pipnet_jax.bench.train import format_table, measure
    row = measure(batch_size=2, image_size=64, steps=1, dtype="float32", backbone="resnet18")
    assert row["devices"] >= 1 and row["step_ms"] > 0 and row["images_per_s"] > 0
    assert "float32" in format_table([row])


@pytest.mark.slow
def test_pseudo_label_benchmark_row(tmp_path):
    from pipnet_jax.bench.pseudo_label import format_table, measure, write_corpus
    write_corpus(str(tmp_path), 8)
    row = measure(str(tmp_path / "crops"), batch_size=8, input_size=64, repeats=1)
    assert row["faces"] == 8 and row["seconds"] > 0
    assert row["end_to_end_faces_per_s"] > 0 and row["model_faces_per_s"] > 0
    assert "end to end" in format_table([row])


@pytest.mark.slow
def test_train_benchmark_interleaves_jax_and_the_torch_step():
    from pipnet_jax.bench.train import format_table, measure_interleaved
    rows = measure_interleaved(batch_size=2, image_size=64, steps=1, backbone="resnet18")
    assert [r["step"] for r in rows] == ["jax", "torch eager"]
    assert all(r["step_ms"] > 0 for r in rows) and rows[1]["vs_torch"] == 1.0
    assert rows[0]["vs_torch"] == rows[1]["step_ms"] / rows[0]["step_ms"]
    assert "vs torch eager" in format_table(rows)


def test_evaluation_benchmark_row():
    from pipnet_jax.bench.evaluation import TABLE, RandomSplit, measure
    from pipnet_jax.bench.timing import format_table
    batches = list(RandomSplit(5, 98).batches(4))
    assert [b["valid"].sum() for b in batches] == [4, 1] and batches[1]["image"].shape[0] == 4
    row = measure(faces=5, batch_size=4, input_size=64, repeats=1)
    assert row["faces"] == 5 and row["seconds"] > 0 and row["faces_per_s"] > 0
    assert "faces/s" in format_table([row], TABLE)


def test_conv_layers_benchmark_tiny():
    from pipnet_jax.bench.conv_layers import SHAPES, measure, totals
    rows = measure(batch_size=1, image_size=32, repeats=1, shapes=SHAPES[:2])
    assert [(r["name"], r["pass"]) for r in rows] == [
        ("stem 7x7/2", "forward"), ("stem 7x7/2", "weight grad"), ("layer1 3x3", "forward"),
        ("layer1 3x3", "input grad"), ("layer1 3x3", "weight grad")]
    assert all(r["jax_ms"] > 0 and r["torch_ms"] > 0 for r in rows)
    total = totals(rows)[-1]
    assert total["pass"] == "all" and abs(total["gap_ms"] - sum(r["gap_ms"] for r in rows)) < 1e-9


def test_conv_layers_jax_and_torch_compute_the_same_maths():
    """The two columns time the same convolution: equal forward and gradients on one shape."""
    import numpy as np
    from pipnet_jax.bench.conv_layers import jax_passes, shape_data, torch_passes
    data = shape_data(3, 2, 4, 8, 16, 2)
    fj, ft = jax_passes(*data, 2), torch_passes(*data, 2)
    nchw = lambda t: t.numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(fj["forward"]()), nchw(ft["forward"]()), atol=1e-5)
    np.testing.assert_allclose(np.asarray(fj["input grad"]()), nchw(ft["input grad"]()[0]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(fj["weight grad"]()),
                               ft["weight grad"]()[1].numpy().transpose(2, 3, 1, 0), atol=1e-5)
