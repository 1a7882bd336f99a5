"""Two processes x 4 CPU devices (launch.local), as on a pod: SIGTERM to one process stops both
at the same step with one checkpoint and exit 0, the resumed run ends equal to an
uninterrupted one, and the distributed evaluation gives the per-face NMEs of one device."""
import csv
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
from runs import main_command

from launch.local import launch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 8
FLAGS = ["--config.data.synthetic_train=64", "--config.data.synthetic_test=16",
         "--config.train.batch_size=8", "--config.model.input_size=64",
         f"--config.train.max_steps={STEPS}", "--config.train.checkpoint_every_steps=2",
         "--config.train.log_every_steps=1", "--config.eval.batch_size=8",
         "--config.data.shuffle_buffer=64"]

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def data_dir(synthetic_64_16):
    return synthetic_64_16


def command(workdir, data_dir, *extra):
    return main_command("configs/synthetic.py", workdir, data_dir, *FLAGS, *extra)


def launch_2x4(cmd, log_dir):
    code = launch(cmd, num_processes=2, devices_per_process=4, log_dir=log_dir, timeout=900)
    logs = [open(os.path.join(log_dir, f"process_{i}.log")).read() for i in range(2)]
    return code, logs


def checkpoint_steps(workdir):
    return sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())


def params(workdir):
    import jax
    from pipnet_jax.checkpoint import load_variables
    variables, step = load_variables(workdir)
    return step, {jax.tree_util.keystr(k): np.asarray(v)
                  for k, v in jax.tree_util.tree_flatten_with_path(variables)[0]}


def read_nmes(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [r["image_id"] for r in rows], np.array([float(r["nme"]) for r in rows])


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two_hosts")
    workdir = str(tmp / "w")
    code, logs = launch_2x4(command(workdir, data_dir), str(tmp / "logs"))
    assert code == 0, logs[0][-3000:] + logs[1][-3000:]
    return workdir


def test_sigterm_to_one_process_stops_both_at_one_step_and_resumes_equal(uninterrupted, data_dir, tmp_path):
    workdir, log_dir = str(tmp_path / "w"), str(tmp_path / "logs")
    result = {}
    runner = threading.Thread(target=lambda: result.update(out=launch_2x4(command(workdir, data_dir), log_dir)))
    runner.start()
    deadline = time.time() + 600
    while not os.path.isdir(os.path.join(workdir, "checkpoints", "2")):
        assert runner.is_alive() and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    with open(os.path.join(log_dir, "process_1.pid")) as f:
        os.kill(int(f.read()), signal.SIGTERM)  # one host only, as a preemption notice may arrive
    runner.join(timeout=600)
    code, logs = result["out"]
    assert code == 0, logs[0][-3000:] + logs[1][-3000:]  # both processes exited 0
    stopped = checkpoint_steps(workdir)[-1]
    assert 2 < stopped < STEPS, stopped
    assert f"a signal on another host: every host stopped at step {stopped}" in logs[0]
    assert "checkpoint saved" not in logs[1]  # process 1 prints nothing; its exit 0 is the check
    assert not os.path.exists(os.path.join(workdir, "results.json"))  # it stopped, not finished

    code, logs = launch_2x4(command(workdir, data_dir), str(tmp_path / "logs_resume"))
    assert code == 0, logs[0][-3000:] + logs[1][-3000:]
    assert f"resuming {workdir} at step {stopped}/{STEPS}" in logs[0]
    (step, resumed), (ref_step, reference) = params(workdir), params(uninterrupted)
    assert step == ref_step == STEPS and resumed.keys() == reference.keys()
    for k in reference:
        np.testing.assert_allclose(resumed[k], reference[k], atol=1e-6, rtol=0, err_msg=k)


def test_distributed_evaluation_equals_one_device(uninterrupted, data_dir, tmp_path):
    """The 2 x 4 run's final evaluation against --mode=eval of the same checkpoint on 1 device."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
    out = tmp_path / "one_device"
    result = subprocess.run(command(uninterrupted, data_dir, "--mode=eval", f"--config.eval.output={out}"),
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    ids_1, nmes_1 = read_nmes(out / "nmes.csv")
    ids_8, nmes_8 = read_nmes(os.path.join(uninterrupted, "nmes.csv"))
    assert len(ids_1) == 16 and ids_1 == ids_8
    np.testing.assert_allclose(nmes_8, nmes_1, rtol=1e-5, atol=1e-7)
