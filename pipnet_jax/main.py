"""Command line: python -m pipnet_jax.main --config configs/synthetic.py --workdir DIR [--mode ...].

Modes: `train` (default: train, resuming from DIR's latest checkpoint, then evaluate), `eval`
(DIR's checkpoint, or a PyTorch .pth given as --config.eval.torch_checkpoint), `predict`
(images, folders, videos), `stc` (self-training with curriculum), `bench` (JAX vs the PyTorch
reference) and `demo` (a random PIPNet on a generated face, with a parity report against the
PyTorch reference). Config fields are overridable: --config.train.batch_size=64.
This module only dispatches: each mode is one function of the module that owns it."""
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pipnet_jax.errors import EXPECTED_ERRORS  # noqa: E402

# mode -> (module, function(config, workdir)); imported on use, so a mode loads only what it
# needs (predict and demo run without TensorFlow, train without torch)
MODES = {"train": ("pipnet_jax.experiment", "run_train"),
         "eval": ("pipnet_jax.experiment", "run_eval"),
         "predict": ("pipnet_jax.predict", "run_predict"),
         "stc": ("pipnet_jax.stc", "run_stc"),
         "bench": ("pipnet_jax.bench.inference", "run_from_config"),
         "demo": ("pipnet_jax.bench.demo", "run_from_config")}
_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config file", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder; default workdirs/<config name>")
_MODE = flags.DEFINE_enum("mode", "train", list(MODES), "what to run")


def default_workdir() -> str:
    path = config_flags.get_config_filename(flags.FLAGS["config"]).split(":")[0]
    return os.path.join("workdirs", os.path.splitext(os.path.basename(path))[0])


def main(argv):
    logging.set_verbosity(logging.WARNING)  # progress bar + printed tables; TensorBoard has the scalars
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    if config is None:
        raise app.UsageError("--config is required, e.g. --config configs/synthetic.py")
    module, function = MODES[_MODE.value]
    run = getattr(importlib.import_module(module), function)
    try:
        run(config, _WORKDIR.value or default_workdir())
    except EXPECTED_ERRORS as e:
        sys.exit(f"error: {e}")  # the message says what to do; no traceback


if __name__ == "__main__":
    sys.exit(app.run(main))
