"""Every config field a mode reads is checked before anything is written: one line naming the
field and what it expects; a typo never reaches a workdir's config.json."""
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from pipnet_jax.config_checks import check
from pipnet_jax.configs.stc_synthetic import get_config as stc_config
from pipnet_jax.configs.synthetic import get_config
from pipnet_jax.errors import ConfigError


@pytest.mark.parametrize("field,value,message", [
    ("model.backbone", "resnet7", r"model.backbone='resnet7': expected one of \['resnet18'"),
    ("train.batch_size", 0, r"train.batch_size=0: expected an integer >= 1"),
    ("train.batch_size", -4, r"train.batch_size=-4: expected an integer >= 1"),
    ("model.input_size", 100, r"model.input_size=100: expected a multiple of model.net_stride=32"),
    ("train.learning_rate", float("nan"), r"train.learning_rate=nan: expected a finite number > 0"),
    ("data.landmarks", "wflw99", r"data.landmarks='wflw99'"),
    ("train.cls_loss", "l3", r"train.cls_loss='l3': expected one of"),
    ("eval.batch_size", 0, r"eval.batch_size=0"),
])
def test_a_bad_field_is_named(field, value, message):
    config = get_config()
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(ConfigError, match=message):
        check(config, "train")


def test_mode_sections():
    config = get_config()
    config.export.batch_size = -2
    with pytest.raises(ConfigError, match=r"export.batch_size=-2"):
        check(config, "export")
    with pytest.raises(ConfigError, match=r"--mode=stc needs an STC config"):
        check(get_config(), "stc")
    config = stc_config()
    config.model.input_size = 64  # a 2x2 score map: no 'cls3' map
    with pytest.raises(ConfigError, match=r"model.input_size=64: STC needs a score map whose side"):
        check(config, "stc")
    check(stc_config(), "stc")
    for mode in ("train", "eval", "predict", "label", "export", "bench", "demo", "dry_run"):
        check(get_config(), mode)


def run_main(*args):
    return subprocess.run([sys.executable, "-m", "pipnet_jax.main", "--config", "synthetic", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_the_command_line_gives_one_line_and_writes_nothing(tmp_path):
    workdir = tmp_path / "w"
    result = run_main(f"--workdir={workdir}", "--config.train.batch_size=0")
    assert result.returncode == 1 and not workdir.exists()
    assert result.stderr.strip().splitlines()[-1] == "error: train.batch_size=0: expected an integer >= 1"
    result = run_main(f"--workdir={workdir}", "--config.train.bogus=3")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: --config.train.bogus: the config has no field 'bogus'" in result.stderr
