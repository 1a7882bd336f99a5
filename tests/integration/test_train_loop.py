"""The training job end to end on a tiny synthetic set: learning, resume after kill -9,
SIGTERM, eval of a PyTorch checkpoint, cross-domain eval sets, and clear errors on bad input."""
import json
import os
import signal
import subprocess
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest
from runs import main_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE_FLAGS = ["--config.data.synthetic_train=64", "--config.data.synthetic_test=16",
              "--config.train.batch_size=8", "--config.model.input_size=128",
              "--config.train.max_steps=8", "--config.train.checkpoint_every_steps=3",
              "--config.train.log_every_steps=1", "--config.eval.batch_size=8",
              "--config.data.shuffle_buffer=64"]


@pytest.fixture(scope="module")
def data_dir(synthetic_64_16):
    return synthetic_64_16


def command(workdir, data_dir, *extra):
    return main_command("configs/synthetic.py", workdir, data_dir, *BASE_FLAGS, *extra)


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, **kw)


def final_params(workdir):
    ckpt = os.path.join(workdir, "checkpoints")
    step = max(int(d) for d in os.listdir(ckpt) if d.isdigit())
    state = ocp.StandardCheckpointer().restore(os.path.join(ckpt, str(step), "state"))
    return step, state


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("run") / "w")
    result = run(command(workdir, data_dir))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir, result


def test_learns_and_writes_results(data_dir, tmp_path):
    """A short run (60 steps of 8 faces) already cuts the test NME to well below its start."""
    workdir = str(tmp_path / "w")
    result = run(command(workdir, data_dir, "--config.train.max_steps=60",
                         "--config.train.checkpoint_every_steps=60", "--config.train.log_every_steps=20"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print(result.stdout[-600:])
    before = json.load(open(os.path.join(workdir, "results_before.json")))["test"]
    after = json.load(open(os.path.join(workdir, "results.json")))["test"]
    assert after["count"] == 16 and 0 <= after["auc"] <= 1
    assert after["nme"] < 0.5 * before["nme"], (before, after)
    for name in ("ced.png", "predictions.png", "meanface.txt", "config.json"):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    assert "NME before training -> after" in result.stdout
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))


def test_resume_after_kill_9_gives_the_same_parameters(uninterrupted, data_dir, tmp_path):
    workdir = str(tmp_path / "w")
    proc = subprocess.Popen(command(workdir, data_dir), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt = os.path.join(workdir, "checkpoints")
    deadline = time.time() + 600
    while not (os.path.isdir(os.path.join(ckpt, "3")) or os.path.isdir(os.path.join(ckpt, "6"))):
        assert proc.poll() is None and time.time() < deadline, "run ended before a checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(int(d) for d in os.listdir(ckpt) if d.isdigit())
    assert killed_at < 8
    result = run(command(workdir, data_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming {workdir} at step {killed_at}/8" in result.stdout
    step, resumed = final_params(workdir)
    ref_step, reference = final_params(uninterrupted[0])
    assert step == ref_step == 8
    flat = lambda t: {k: np.asarray(v) for k, v in __import__("jax").tree_util.tree_flatten_with_path(t)[0]}
    a, b = flat(resumed["params"]), flat(reference["params"])
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6, rtol=0)
    for k, v in flat(resumed["batch_stats"]).items():
        np.testing.assert_allclose(v, flat(reference["batch_stats"])[k], atol=1e-6, rtol=0)


def test_sigterm_saves_a_checkpoint(data_dir, tmp_path):
    workdir = str(tmp_path / "w")
    proc = subprocess.Popen(command(workdir, data_dir, "--config.train.max_steps=1000",
                                    "--config.train.checkpoint_every_steps=1000"),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    for line in proc.stdout:  # wait until training steps are running
        if "loss=" in line:
            break
        assert time.time() < deadline
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out[-3000:]
    step, _ = final_params(workdir)
    assert 1 <= step < 1000 and f"checkpoint saved at step {step}" in out


def test_eval_of_a_torch_checkpoint_equals_the_torch_reference(data_dir, tmp_path):
    import torch
    from ml_collections import config_flags  # noqa: F401  (configs import it)

    from configs.synthetic import get_config
    from pipnet_jax.data.dataset import prepare
    from pipnet_jax.images import IMAGENET_MEAN, IMAGENET_STD
    from pipnet_jax.metrics import nme, normalizer
    from pipnet_jax.bench.reference_torch import PIPNetTorch, randomize_batchnorm, reference_decoder
    from pipnet_jax.experiment import run_eval

    torch.manual_seed(0)
    net = PIPNetTorch(98, "resnet18")
    randomize_batchnorm(net, torch.Generator().manual_seed(0))
    with torch.no_grad():  # a head that prefers real cells, so the NME is not degenerate
        net.cls_layer.weight.normal_(0, 0.02)
    path = str(tmp_path / "epoch59.pth")
    torch.save(net.state_dict(), path)
    config = get_config()
    config.data.data_dir, config.data.synthetic_train, config.data.synthetic_test = data_dir, 64, 16
    config.model.input_size, config.eval.torch_checkpoint = 256, path
    results = run_eval(config, str(tmp_path / "eval"))

    data = prepare(config, str(tmp_path / "eval"))
    decode = reference_decoder(data.neighbors, 32, 256)
    net.eval()
    preds, gts = [], []
    for batch in data.eval_batches("test", 8):
        x = (batch["image"].astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        with torch.no_grad():
            lms, _ = decode(net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())))
        preds.append(lms.numpy()[batch["valid"]])
        gts.append(batch["landmarks"][batch["valid"]])
    pred, gt = np.concatenate(preds), np.concatenate(gts)
    expected = nme(pred, gt, normalizer(gt, data.landmark_set)).mean()
    assert results["test"]["count"] == 16
    np.testing.assert_allclose(results["test"]["nme"], expected, rtol=1e-5)


def test_bad_inputs(uninterrupted, data_dir, tmp_path):
    from configs.synthetic import get_config
    from configs.wflw import get_config as wflw_config
    from pipnet_jax.checkpoint import CheckpointError
    from pipnet_jax.data.dataset import prepare
    from pipnet_jax.experiment import run_eval
    from pipnet_jax.workdir import check_config

    # an unknown config field
    result = run(command(str(tmp_path / "x"), data_dir, "--config.train.batch_sizee=4"))
    assert result.returncode != 0 and "batch_sizee" in result.stderr
    # a missing raw data folder
    config = wflw_config()
    config.data.manual_dir, config.data.data_dir = str(tmp_path / "no_such_dir"), str(tmp_path / "tfds")
    with pytest.raises(FileNotFoundError, match="data.manual_dir=.*no_such_dir.*WFLW_images"):
        prepare(config, str(tmp_path / "y"))
    # a workdir written by another config
    config = get_config()
    config.model.backbone = "resnet50"
    with pytest.raises(ValueError, match=r"(?s)different config.*model: workdir has .*resnet18.*resnet50"):
        check_config(config, uninterrupted[0])
    # a damaged checkpoint
    import shutil
    workdir = str(tmp_path / "damaged")
    shutil.copytree(uninterrupted[0], workdir)
    state_dir = os.path.join(workdir, "checkpoints", "8", "state")
    for root, _, files in os.walk(state_dir):
        for f in files:
            with open(os.path.join(root, f), "r+b") as fh:
                fh.truncate(max(0, os.path.getsize(os.path.join(root, f)) // 3))
    config = get_config()
    config.data.data_dir, config.data.synthetic_train, config.data.synthetic_test = data_dir, 64, 16
    config.model.input_size, config.train.batch_size = 128, 8  # the workdir's config
    with pytest.raises(CheckpointError, match="checkpoints/8 cannot be restored"):
        run_eval(config, workdir)


def test_evaluate_reports_cross_domain_sets(shared_data, tmp_path):
    """Main set 300W with the GSSL crop (built apart as pipnet_300w/300w_gssl) plus a fabricated
    COFW-68 in config.evals: results.json has the main splits first, then 'cofw68/test';
    a missing cross-domain raw folder names the field to set."""
    from configs.common import base_config
    from pipnet_jax.data import annotations as A
    from pipnet_jax.data import builders
    from pipnet_jax.data.dataset import prepare
    from pipnet_jax.experiment import build_model, make_evaluate
    from pipnet_jax.train import init_variables
    from test_annotations import make_300w_tree
    from test_builders import write_cofw68

    make_300w_tree(tmp_path / "300W", shared_data)
    (tmp_path / "COFW68").mkdir()
    write_cofw68(tmp_path / "COFW68")
    config = base_config()
    config.data.dataset = config.data.landmarks = "300w"
    config.data.crop = "300w_gssl"
    config.evals.main.splits = ("full", "challenge")
    config.data.manual_dir, config.data.data_dir = str(tmp_path / "300W"), str(tmp_path / "tfds")
    config.evals.cofw68 = dict(dataset="cofw68", splits=("test",), manual_dir=str(tmp_path / "COFW68"))
    config.model.input_size, config.eval.batch_size = 64, 2
    workdir = str(tmp_path / "w")
    data = prepare(config, workdir)
    assert data.name == "pipnet_300w/300w_gssl"
    assert [(e.key, e.name) for e in data.eval_sets] == [
        ("full", data.name), ("challenge", data.name), ("cofw68/test", "pipnet_cofw68")]
    record = A.read_300w(tmp_path / "300W", "challenge")[0]
    stored = next(builders.load(data.name, "challenge", data.data_dir).as_numpy_iterator())
    np.testing.assert_allclose(stored["landmarks"], A.crop_box(record, "300w_gssl").landmarks,
                               rtol=0, atol=1e-6)

    model = build_model(config, 68)
    results = make_evaluate(config, workdir, model, data)(init_variables(model, config), "final")
    with open(os.path.join(workdir, "results.json")) as f:
        stored = json.load(f)
    assert stored.pop("provenance")["pipnet_jax_version"] == __import__("pipnet_jax").__version__
    assert stored == results
    assert list(results) == ["full", "challenge", "cofw68/test"]
    assert [r["count"] for r in results.values()] == [3, 1, 2]
    assert all(r["nme"] > 0 and 0 <= r["auc"] <= 1 for r in results.values())

    config.evals.wflw68 = dict(dataset="wflw68", splits=("test",), manual_dir=str(tmp_path / "no_such_dir"))
    with pytest.raises(FileNotFoundError, match="evals.wflw68.manual_dir=.*no_such_dir.*WFLW_images"):
        prepare(config, workdir)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data_dir, tmp_path):
    workdir = str(tmp_path / "w")
    # lr 1e30: the first Adam step moves every weight by ~1e30, the next loss overflows
    result = run(command(workdir, data_dir, "--config.train.learning_rate=1e30",
                         "--config.train.checkpoint_every_steps=1"))
    assert result.returncode == 1
    assert "error: loss is" in result.stderr and "last good checkpoint" in result.stderr
    steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
    assert steps and steps[-1] < 8
    _, state = final_params(workdir)
    assert all(np.all(np.isfinite(v)) for v in __import__("jax").tree_util.tree_leaves(state["params"]))
