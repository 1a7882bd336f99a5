"""The package's front doors: `pipnet-jax` lists its subcommands, each --help shows an example,
configs resolve by name from any folder, and the core (Predictor, `pipnet-jax predict`) runs
in an interpreter where importing TensorFlow or torch fails, as in a core-only install."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO_ROOT
from pipnet_jax import cli
from pipnet_jax.checkpoint import Checkpointer
from pipnet_jax.configs import resolve
from pipnet_jax.configs.synthetic import get_config
from pipnet_jax.meanface import write_meanface
from pipnet_jax.models import PIPNet
from pipnet_jax.workdir import check_config

# Run in a child: TensorFlow and torch cannot be imported there.
BLOCK = """
import importlib.abc, importlib.machinery, sys
class Missing(importlib.abc.Loader):
    def create_module(self, spec):
        raise ImportError(f'No module named {spec.name!r} (blocked: a core install has none)', name=spec.name)
    def exec_module(self, module):
        pass
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'tensorflow_datasets', 'torch', 'clu'):
            return importlib.machinery.ModuleSpec(name, Missing())
sys.meta_path.insert(0, Block())
"""

def child(code, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, "-c", BLOCK + code], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_help_lists_every_subcommand_with_an_example(capsys):
    assert cli.main(["--help"]) == 0
    listed = capsys.readouterr().out
    for name in ("train", "eval", "predict", "stc", "label", "export", "bench", "data", "demo", "dry_run"):
        assert f"\n  {name} " in listed, name
        assert cli.main([name, "--help"]) == 0
        assert "example:\n  pipnet-jax " in capsys.readouterr().out, name
    assert cli.main(["bogus"]) == 2


def test_configs_resolve_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve("wflw:r101").endswith(os.path.join("pipnet_jax", "configs", "wflw.py:r101"))
    assert resolve("configs/synthetic.py").endswith(os.path.join("pipnet_jax", "configs", "synthetic.py"))
    with pytest.raises(FileNotFoundError, match="no packaged config named 'wfl'"):
        resolve("wfl")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny trained-looking workdir: config.json, meanface.txt, one checkpoint."""
    path = str(tmp_path_factory.mktemp("core") / "w")
    config = get_config()
    config.model.input_size = 64
    check_config(config, path)
    rng = np.random.default_rng(0)
    write_meanface(os.path.join(path, "meanface.txt"), rng.uniform(0.2, 0.8, (98, 2)))
    variables = PIPNet(98, "resnet18").init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
    checkpoints = Checkpointer(os.path.join(path, "checkpoints"))
    checkpoints.save(1, dict(variables), {"step": 1})
    checkpoints.close()
    return path


def test_predictor_and_predict_command_without_tensorflow_or_torch(workdir, tmp_path):
    image = str(tmp_path / "face.png")
    import cv2
    cv2.imwrite(image, np.full((120, 100, 3), 128, np.uint8))
    out = child(f"""
import numpy as np
from pipnet_jax import Predictor, PIPNet, load_torch_checkpoint
faces = Predictor.from_workdir({workdir!r}).predict(np.zeros((120, 100, 3), np.uint8), boxes=[[10, 10, 90, 110]])
assert faces[0].landmarks.shape == (98, 2) and np.isfinite(faces[0].landmarks).all()
from pipnet_jax import cli
cli.main(['predict', '--config', 'synthetic', '--workdir', {workdir!r},
          '--config.predict.input={image}', '--config.predict.detector=haar',
          '--config.predict.output={tmp_path / "out"}'])
""", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert os.path.exists(tmp_path / "out" / "landmarks.json")
