"""The entry point: it only dispatches, and an expected error is one line, exit 1, no traceback."""
import subprocess
import sys

from conftest import REPO_ROOT
from pipnet_jax import main


def test_every_mode_names_an_existing_function():
    import importlib
    for mode, (module, function) in main.MODES.items():
        assert callable(getattr(importlib.import_module(module), function)), mode


def test_eval_of_a_folder_that_is_not_a_workdir_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipnet_jax.main", "--config", "configs/synthetic.py",
                             "--mode=eval", f"--workdir={tmp_path}"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert f"error: {tmp_path}/config.json not found: {tmp_path} is not a training workdir" in result.stderr
    assert "Traceback" not in result.stderr
