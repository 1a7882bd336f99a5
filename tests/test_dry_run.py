"""--mode=dry_run: data sizes (or what would build a missing set), steps per epoch, parameter
count, FLOPs and the compiled train step's memory, with nothing trained or written."""
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from conftest import REPO_ROOT
from pipnet_jax import dry_run
from pipnet_jax.configs.synthetic import get_config
from pipnet_jax.configs.wflw import get_config as wflw_config
from pipnet_jax.data import builders
from pipnet_jax.experiment import build_model
from pipnet_jax.workdir import check_config

TRAIN, TEST, BATCH, SIZE = 16, 8, 4, 64
FLAGS = [f"--config.data.synthetic_train={TRAIN}", f"--config.data.synthetic_test={TEST}",
         f"--config.model.input_size={SIZE}", "--config.model.backbone=resnet18",
         f"--config.train.batch_size={BATCH}"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    builders.prepare_synthetic(path, TRAIN, TEST, seed=0)
    return str(path)


def tiny_config(data_dir, **data):
    config = get_config()
    config.model.input_size, config.model.backbone, config.train.batch_size = SIZE, "resnet18", BATCH
    config.data.synthetic_train, config.data.synthetic_test = TRAIN, TEST
    config.data.data_dir = data_dir
    config.data.update(data)
    return config


def labelled(lines, label):
    found = [line.split(": ", 1)[1] for line in lines if line.startswith(label + ": ")]
    assert len(found) == 1, (label, lines)
    return found[0]


def files_under(path):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)


def test_sizes_and_steps_of_a_built_set(data_dir, tmp_path):
    lines, steps = dry_run.data_lines(tiny_config(data_dir), str(tmp_path / "w"), BATCH)
    assert labelled(lines, "train faces") == str(TRAIN)
    assert labelled(lines, "eval faces test") == str(TEST)
    # dataset.steps_per_epoch: this host's faces // the per-host batch (drop_last)
    assert steps == TRAIN // BATCH and labelled(lines, "steps per epoch") == str(TRAIN // BATCH)


def test_a_set_not_built_is_named_with_what_builds_it(data_dir, tmp_path):
    empty = str(tmp_path / "tfds")
    lines, steps = dry_run.data_lines(tiny_config(empty), str(tmp_path / "w"), BATCH)
    assert steps is None and labelled(lines, "steps per epoch").startswith("unknown")
    assert labelled(lines, "train faces").startswith(
        f"pipnet_synthetic: not built in {empty} (training generates it: {TRAIN} train / {TEST} test")
    assert "not built" in labelled(lines, "eval faces test")
    # another synthetic size than the built one: training would regenerate it
    lines, steps = dry_run.data_lines(tiny_config(data_dir, synthetic_train=32), str(tmp_path / "w"), BATCH)
    assert steps is None and "built in" in labelled(lines, "train faces") and "regenerates" in lines[1]

    config = wflw_config()
    config.data.data_dir = empty
    lines, steps = dry_run.data_lines(config, str(tmp_path / "w"), 16)
    assert labelled(lines, "train faces") == (f"pipnet_wflw: not built in {empty} (set data.manual_dir "
                                              f"to the raw WFLW folder; training builds it)")
    assert labelled(lines, "eval faces test, test_pose, test_expression, test_illumination, "
                           "test_makeup, test_occlusion, test_blur").startswith("pipnet_wflw: not built")
    assert not os.path.exists(empty) and not os.path.exists(tmp_path / "w")


def test_a_workdir_of_another_experiment_is_reported(tmp_path):
    workdir = str(tmp_path / "w")
    assert "absent or empty" in dry_run.workdir_line(get_config(), workdir)
    check_config(get_config(), workdir)
    assert "no checkpoint" in dry_run.workdir_line(get_config(), workdir)
    assert "training would refuse it" in dry_run.workdir_line(tiny_config(""), workdir)


def test_parameter_count_and_flops_scale_with_the_input():
    config = tiny_config("")
    model = build_model(config, 98)
    real = model.init(jax.random.PRNGKey(0), jnp.zeros((1, SIZE, SIZE, 3)))
    abstract = dry_run.abstract_variables(model, SIZE)
    for part in ("params", "batch_stats"):
        assert dry_run.count(abstract[part]) == sum(x.size for x in jax.tree_util.tree_leaves(real[part]))
    # 4x the pixels, about 4x the FLOPs (XLA counts only the taps that fall inside the image,
    # so tiny maps count fewer per pixel: 64 -> 128 gives 4.56x, 128 -> 256 4.27x)
    small, source = dry_run.forward_flops(model, dry_run.abstract_variables(model, 128), 128)
    large, _ = dry_run.forward_flops(model, dry_run.abstract_variables(model, 256), 256)
    assert "cost_analysis" in source
    assert 3.5 < large / small < 4.5, (small, large)


def test_the_command_prints_every_value_and_writes_nothing(data_dir, tmp_path):
    workdir = tmp_path / "w"
    before = files_under(data_dir)
    result = subprocess.run([sys.executable, "-m", "pipnet_jax.main", "--config", "configs/synthetic.py",
                             "--mode=dry_run", f"--workdir={workdir}", f"--config.data.data_dir={data_dir}",
                             *FLAGS], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "  model.input_size = 64" in lines and "  train.batch_size = 4" in lines
    assert labelled(lines, "train faces") == str(TRAIN)
    assert labelled(lines, "eval faces test") == str(TEST)
    assert labelled(lines, "steps per epoch") == str(TRAIN // BATCH)
    model = build_model(tiny_config(data_dir), 98)
    abstract = dry_run.abstract_variables(model, SIZE)
    assert labelled(lines, "params").split()[0] == str(dry_run.count(abstract["params"]))
    assert labelled(lines, "batch_stats") == str(dry_run.count(abstract["batch_stats"]))
    assert float(labelled(lines, "forward flops per image").split()[0]) > 0
    assert float(re.match(r"([\d.]+) s", labelled(lines, "train step compile time")).group(1)) > 0
    for field in ("argument", "output", "temp", "generated code"):
        assert labelled(lines, f"train step memory {field}").endswith(" MiB")
    assert float(labelled(lines, "train step memory total").split()[0]) > 0
    assert not workdir.exists() and files_under(data_dir) == before
