"""Command line: python -m pipnet_jax.main --config configs/synthetic.py --workdir DIR [--mode ...]
(the same as `pipnet-jax MODE --config ...`, pipnet_jax/cli.py).

Modes: `train` (default: train, resuming from DIR's latest checkpoint, then evaluate), `eval`
(DIR's checkpoint, or a PyTorch .pth given as --config.eval.torch_checkpoint), `predict`
(images, folders, videos), `stc` (self-training with curriculum), `stc_study` (STC against
its baselines over seeds: configs/stc_scarce.py), `label` (pseudo-label a
corpus with DIR's model), `export` (DIR's model as a deployable file), `bench` (JAX vs the
PyTorch reference), `demo` (a random PIPNet on a generated face, with a parity report
against the PyTorch reference) and `dry_run` (what a training run would take: config, data
sizes, parameters, FLOPs, the train step's compiled memory; trains and writes nothing).
--config is a file or a packaged config's name (`wflw`, `wflw:r101`). Config fields are
overridable: --config.train.batch_size=64.
This module only dispatches: each mode is one function of the module that owns it."""
import errno
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pipnet_jax.config_checks import check  # noqa: E402
from pipnet_jax.configs import resolve  # noqa: E402
from pipnet_jax.errors import EXPECTED_ERRORS  # noqa: E402

# mode -> (module, function(config, workdir)); imported on use, so a mode loads only what it
# needs (predict and demo run without TensorFlow, train without torch)
MODES = {"train": ("pipnet_jax.experiment", "run_train"),
         "eval": ("pipnet_jax.experiment", "run_eval"),
         "predict": ("pipnet_jax.predict", "run_predict"),
         "stc": ("pipnet_jax.stc", "run_stc"),
         "stc_study": ("pipnet_jax.stc.study", "run_study"),
         "label": ("pipnet_jax.stc.labelling", "run_label"),
         "export": ("pipnet_jax.export", "run_export"),
         "bench": ("pipnet_jax.bench.inference", "run_from_config"),
         "demo": ("pipnet_jax.bench.demo", "run_from_config"),
         "dry_run": ("pipnet_jax.dry_run", "run_dry_run")}
_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config file", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder; default workdirs/<config name>")
_MODE = flags.DEFINE_enum("mode", "train", list(MODES), "what to run")
# The machine's answer, not a bug: one line naming the file (disk full, no permission, ...).
ENVIRONMENT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)
_STARTED = []  # main() began: the command line was parsed


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
    _STARTED.append(True)
    module, function = MODES[_MODE.value]
    try:
        check(config, _MODE.value)
        getattr(importlib.import_module(module), function)(config, _WORKDIR.value or default_workdir())
    except EXPECTED_ERRORS as e:
        sys.exit(f"error: {e}")  # the message says what to do; no traceback
    except OSError as e:
        if e.errno not in ENVIRONMENT_ERRNOS:
            raise
        sys.exit(f"error: {e.filename or ''}: {e.strerror}" if e.filename else f"error: {e}")


def resolve_config_flag(argv: list[str]) -> list[str]:
    """--config NAME or --config=NAME (a packaged config) -> its file; a path stays as it is."""
    out, i = list(argv), 0
    while i < len(out):
        if out[i] == "--config" and i + 1 < len(out):
            out[i + 1] = resolve(out[i + 1])
            i += 1
        elif out[i].startswith("--config="):
            out[i] = "--config=" + resolve(out[i].split("=", 1)[1])
        i += 1
    return out


def run(argv: list[str]) -> None:
    """absl's app.run on argv (argv[0]: the program name) with --config resolved."""
    try:
        argv = resolve_config_flag(argv)
    except FileNotFoundError as e:
        sys.exit(f"error: {e}")
    sys.argv = argv  # ml_collections reads the --config.* overrides from sys.argv
    try:
        app.run(main, argv=argv)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        if _STARTED:
            raise
        # ml_collections' override of a field the config does not have: name the flag
        key = str(e).strip("\"'")
        given = [a.split("=")[0] for a in argv if a.startswith("--config.") and
                 a.split("=")[0].rsplit(".", 1)[-1] == key]
        sys.exit(f"error: {given[0] if given else 'a --config. override'}: the config has no "
                 f"field {key!r} ({type(e).__name__}); see the config file for the fields")


if __name__ == "__main__":
    run(sys.argv)
