"""The whole config checked before anything is written: a typo is one line naming the field
and what it expects (ConfigError), never a ZeroDivisionError twenty seconds in, and never a
workdir whose config.json holds the typo.

`check(config, mode)` covers the sections every mode reads (model, data, train, eval) and the
mode's own (predict, stc, label, export); data-dependent checks (splits, built sets) stay
where the data is read."""
import math

from pipnet_jax.errors import ConfigError
from pipnet_jax.files import TASKS
from pipnet_jax.landmarks import get_landmark_set
from pipnet_jax.losses import REG_LOSSES, SCORE_LOSSES
from pipnet_jax.models.pipnet import BACKBONES, NET_STRIDES

DETECTORS = ("faceboxes", "haar")
STC_SCHEDULES = ("epochs", "steps")  # stc.schedule: a student's length
PREDICT_BACKENDS = ("auto", "xla", "onnxruntime")  # inference.Predictor's backends
EXPORT_FORMATS = ("jax", "saved_model", "tflite", "onnx")


def _field(config, dotted):
    value = config
    for part in dotted.split("."):
        value = value[part]
    return value


def _integer(config, dotted, minimum):
    value = _field(config, dotted)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{dotted}={value!r}: expected an integer >= {minimum}")
    return value


def _number(config, dotted, low=0.0, high=math.inf, low_open=False):
    value = _field(config, dotted)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high != math.inf else "")
        raise ConfigError(f"{dotted}={value!r}: expected a finite number {bound}")
    return value


def _choice(config, dotted, choices):
    value = _field(config, dotted)
    if value not in choices:
        raise ConfigError(f"{dotted}={value!r}: expected one of {list(choices)}")
    return value


def check_model(config) -> None:
    _choice(config, "model.backbone", BACKBONES)
    _integer(config, "model.num_neighbors", 1)
    stride = _choice(config, "model.net_stride", NET_STRIDES)
    size = _integer(config, "model.input_size", stride)
    if size % stride:
        raise ConfigError(f"model.input_size={size}: expected a multiple of model.net_stride={stride}")


def check_common(config) -> None:
    _integer(config, "seed", 0)
    check_model(config)
    try:
        landmark_set = get_landmark_set(config.data.landmarks)
    except (KeyError, ValueError) as e:
        raise ConfigError(f"data.landmarks={config.data.landmarks!r}: {e}") from None
    if config.model.num_neighbors >= landmark_set.num_points:
        raise ConfigError(f"model.num_neighbors={config.model.num_neighbors}: expected fewer than "
                          f"the {landmark_set.num_points} points of {landmark_set.name!r}")
    _choice(config, "data.on_error", ("raise", "skip"))
    _integer(config, "data.shuffle_buffer", 1)
    _integer(config, "data.threads", 0)
    t = "train."
    _integer(config, t + "batch_size", 1)
    _number(config, t + "learning_rate", low=0.0, low_open=True)
    _integer(config, t + "num_epochs", 1)
    _integer(config, t + "max_steps", 0)
    _number(config, t + "decay_factor", low=0.0, low_open=True)
    for epoch in config.train.decay_epochs:
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ConfigError(f"train.decay_epochs={tuple(config.train.decay_epochs)!r}: expected "
                              f"epochs (integers >= 0)")
    _choice(config, t + "cls_loss", SCORE_LOSSES)
    _choice(config, t + "reg_loss", REG_LOSSES)
    _number(config, t + "cls_loss_weight")
    _number(config, t + "reg_loss_weight")
    _number(config, t + "weight_decay")
    _choice(config, t + "compute_dtype", ("float32", "bfloat16"))
    _integer(config, t + "log_every_steps", 1)
    _integer(config, t + "checkpoint_every_steps", 1)
    _integer(config, t + "eval_every_steps", 0)
    _integer(config, t + "keep_checkpoints", 1)
    _integer(config, "eval.batch_size", 1)
    _integer(config, "eval.num_pictures", 1)


def check_stc(config, mode: str = "stc") -> None:
    if "stc" not in config:
        raise ConfigError(f"--mode={mode} needs an STC config (a `stc` section: configs/stc_*.py, or "
                          "pipnet_jax.configs.common.stc_config)")
    for task in config.stc.tasks:
        if task not in TASKS:
            raise ConfigError(f"stc.tasks={tuple(config.stc.tasks)!r}: {task!r} is not one of {list(TASKS)}")
    cells = config.model.input_size // config.model.net_stride
    if cells % 4:  # the 'cls3' map pools the score map 4x (spec 16)
        raise ConfigError(f"model.input_size={config.model.input_size}: STC needs a score map whose side "
                          f"(input_size / net_stride = {cells}) is a multiple of 4, e.g. "
                          f"input_size={4 * config.model.net_stride}")
    _integer(config, "stc.shard_size", 1)
    _integer(config, "stc.label_batch_size", 1)
    _number(config, "stc.min_confidence")
    _choice(config, "stc.schedule", STC_SCHEDULES)


def check(config, mode: str) -> None:
    """Every field `mode` reads, before anything is built or written."""
    check_common(config)
    if mode == "predict":
        _integer(config, "predict.batch_size", 1)
        _choice(config, "predict.detector", DETECTORS)
        _choice(config, "predict.backend", PREDICT_BACKENDS)
        _number(config, "predict.score_threshold", high=1.0)
    elif mode == "stc":
        check_stc(config)
    elif mode == "stc_study":
        check_stc(config, mode)
        if "study" not in config:
            raise ConfigError("--mode=stc_study needs a config with a `study` section (configs/stc_scarce.py)")
        for task in config.study.ablation_tasks:
            if task not in TASKS:
                raise ConfigError(f"study.ablation_tasks: {task!r} is not one of {list(TASKS)}")
        extra = set(config.study.ablation_seeds) | set(config.study.weighted_seeds)
        if not config.study.seeds or extra - set(config.study.seeds):
            raise ConfigError(f"study.seeds={tuple(config.study.seeds)} must be non-empty and hold "
                              f"study.ablation_seeds and study.weighted_seeds ({sorted(extra)})")
        if len(config.study.weights) != 2 or min(config.study.weights) <= 0:
            raise ConfigError(f"study.weights={tuple(config.study.weights)}: expected (labeled, "
                              f"pseudo-labeled), both > 0")
    elif mode == "label":
        _integer(config, "label.shard_size", 1)
        _integer(config, "label.batch_size", 1)
        _choice(config, "label.task", TASKS)
        _number(config, "label.min_confidence")
    elif mode == "export":
        _choice(config, "export.format", EXPORT_FORMATS)
        _integer(config, "export.batch_size", 0)
