"""One run folder: one run at a time (a lock the OS drops with the process, so kill -9 leaves
none behind), a damaged config.json is a named error, config.json keeps the version."""
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from pipnet_jax.configs.synthetic import get_config
from pipnet_jax.version import __version__
from pipnet_jax.workdir import WorkdirBusyError, WorkdirError, check_config, read_config, run_lock

HOLD = "import sys, time; from pipnet_jax.workdir import run_lock\nwith run_lock(sys.argv[1]):\n" \
       "    print('locked', flush=True); time.sleep(600)"


def test_a_second_run_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
    workdir = str(tmp_path / "w")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, workdir], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WorkdirBusyError, match=rf"in use by another run \(pid {holder.pid} on "):
            with run_lock(workdir):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with run_lock(workdir):  # kill -9 released it
        with open(os.path.join(workdir, ".lock")) as f:
            assert f.read().startswith(f"pid {os.getpid()} ")


def test_config_json_records_the_version_and_a_damaged_one_is_named(tmp_path):
    workdir = str(tmp_path / "w")
    check_config(get_config(), workdir)
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["pipnet_jax_version"] == __version__
    assert read_config(workdir)["model"]["backbone"] == "resnet18"
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write('{"model": {"backbone"')  # cut short
    with pytest.raises(WorkdirError, match=r"config.json: not a readable config.json"):
        read_config(workdir)
