"""Data parallelism: 8 CPU devices and 2 processes x 4 devices equal one device."""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "support", "multidevice_steps.py")


def run(args, devices, tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    subprocess.run([sys.executable, SCRIPT, *args], check=True, env=env, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def single_and_sharded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parallel")
    run([str(tmp / "single.npz"), "--single"], 8, tmp)
    run([str(tmp / "sharded.npz")], 8, tmp)
    return np.load(tmp / "single.npz"), np.load(tmp / "sharded.npz")


def test_8_devices_equal_1_device(single_and_sharded):
    single, sharded = single_and_sharded
    assert int(single["num_devices"]) == 1 and int(sharded["num_devices"]) == 8
    np.testing.assert_allclose(sharded["losses"], single["losses"], rtol=1e-5)
    keys = [k for k in single.files if k.startswith("[")]
    assert any("batch_stats" in k and "mean" in k for k in keys)
    for k in keys:
        np.testing.assert_allclose(sharded[k], single[k], atol=1e-5, rtol=0, err_msg=k)


@pytest.mark.multiprocess
def test_2_processes_equal_1_process(single_and_sharded, tmp_path):
    from launch.local import launch
    out = tmp_path / "two.npz"
    code = launch([sys.executable, SCRIPT, str(out)], num_processes=2, devices_per_process=4,
                  log_dir=str(tmp_path / "logs"), timeout=600)
    logs = "".join(open(tmp_path / "logs" / f"process_{i}.log").read() for i in range(2))
    assert code == 0, logs
    two = np.load(out)
    assert int(two["num_processes"]) == 2 and int(two["num_devices"]) == 8
    np.testing.assert_allclose(two["losses"], single_and_sharded[1]["losses"], rtol=1e-5)
