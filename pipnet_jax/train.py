"""Training state and the train step: normalise, targets, forward, loss, Adam (spec 8, 9)."""
from typing import Any, Callable, Optional

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from pipnet_jax.images import normalize_images
from pipnet_jax.losses import pip_loss
from pipnet_jax.targets import batch_targets


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any


def create_train_state(variables, tx: optax.GradientTransformation) -> TrainState:
    return TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                      batch_stats=variables["batch_stats"], opt_state=tx.init(variables["params"]))


def make_train_step(model, tx: optax.GradientTransformation, neighbors, *, input_size: int = 256,
                    cls_loss="l2", reg_loss="l1", cls_weight=10.0, reg_weight=1.0) -> Callable:
    """(state, images uint8 (B,H,W,3), landmarks (B,N,2) in [0,1][, task (B,)]) ->
    (state, metrics). BatchNorm runs in train mode on the whole (global) batch."""
    neighbors = np.asarray(neighbors)
    if neighbors.shape != (model.num_landmarks, model.num_neighbors):
        raise ValueError(f"neighbor table has shape {neighbors.shape}; the model needs "
                         f"({model.num_landmarks}, {model.num_neighbors})")
    map_size = (input_size // model.net_stride,) * 2

    def loss_fn(params, batch_stats, images, landmarks, task):
        output, updates = model.apply({"params": params, "batch_stats": batch_stats},
                                      normalize_images(images, input_size), train=True,
                                      mutable=["batch_stats"])
        targets = batch_targets(landmarks, neighbors, map_size, stc=task is not None)
        loss, terms = pip_loss(output, targets, cls_loss=cls_loss, reg_loss=reg_loss,
                               cls_weight=cls_weight, reg_weight=reg_weight, task=task)
        return loss, (terms, updates["batch_stats"])

    def train_step(state: TrainState, images, landmarks, task=None):
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (terms, batch_stats)), grads = grad_fn(state.params, state.batch_stats, images,
                                                      landmarks, task)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                                  opt_state=opt_state)
        return new_state, {"loss": loss, **{f"loss_{k}": v for k, v in terms.items()}}

    return train_step


def make_predict_fn(model, neighbors, input_size: int = 256) -> Callable:
    """jitted (variables, images uint8 NHWC) -> (landmarks (B,N,2) in [0,1], confidence)."""
    from pipnet_jax.decode import decoder

    decode = decoder(neighbors, model.net_stride, input_size)

    @jax.jit
    def predict(variables, images):
        return decode(model.apply(variables, normalize_images(images, input_size), train=False))

    return predict


def make_optimizer(train_config, steps_per_epoch: int):
    """(optimizer, learning-rate schedule): Adam with the original's per-epoch step decay
    (MultiStepLR) and optional L2 weight decay added to the gradient as
    torch.optim.Adam(weight_decay=...) does."""
    boundaries = {int(e) * steps_per_epoch: train_config.decay_factor
                  for e in train_config.decay_epochs}
    schedule = optax.piecewise_constant_schedule(train_config.learning_rate, boundaries)
    adam = optax.adam(schedule)
    if train_config.weight_decay:
        return optax.chain(optax.add_decayed_weights(train_config.weight_decay), adam), schedule
    return adam, schedule


# --------------------------------------------------------------------------- the loop
# Everything below drives a run from a config; the data pipeline (TensorFlow) is imported
# lazily so that the model, the train step and inference need no TensorFlow.

# Config fields that must not change when a workdir is resumed.
_FIXED_FIELDS = ("model", "data.dataset", "data.landmarks", "data.crop", "data.train_split",
                 "seed", "train.batch_size", "train.compute_dtype")
# Values of fields added later, for workdirs whose config.json predates them.
_FIXED_FIELD_DEFAULTS = {"data.crop": ""}


def _lookup(config, dotted):
    for part in dotted.split("."):
        config = config[part]
    return config.to_dict() if hasattr(config, "to_dict") else config


def check_workdir_config(config, workdir: str) -> None:
    """A workdir belongs to one experiment: resuming with a different model, data set or
    batch size is refused with the differing fields named. Writes config.json first time."""
    import json
    import os

    from pipnet_jax.checkpoint import write_json_atomic

    path = os.path.join(workdir, "config.json")
    current = {f: _lookup(config, f) for f in _FIXED_FIELDS}
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        saved = {k: saved.get(k, _FIXED_FIELD_DEFAULTS.get(k)) for k in _FIXED_FIELDS}
        differ = [f"{k}: workdir has {saved[k]!r}, config has {current[k]!r}"
                  for k in _FIXED_FIELDS if saved[k] != current[k]]
        if differ:
            raise ValueError(f"{workdir} was written by a different config; use another "
                             f"--workdir or the same settings:\n  " + "\n  ".join(differ))
    elif jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        write_json_atomic(path, current)


def build_model(config, num_landmarks: int, stc: bool = False):
    from pipnet_jax.models import PIPNet

    dtypes = {"float32": None, "bfloat16": jnp.bfloat16}
    if config.train.compute_dtype not in dtypes:
        raise ValueError(f"train.compute_dtype must be one of {list(dtypes)}, "
                         f"got {config.train.compute_dtype!r}")
    return PIPNet(num_landmarks, config.model.backbone, config.model.num_neighbors,
                  config.model.net_stride, stc=stc, dtype=dtypes[config.train.compute_dtype])


def init_variables(model, config) -> dict:
    """Random init (seeded), then the ImageNet backbone weights when the config names them."""
    size = config.model.input_size
    variables = model.init(jax.random.PRNGKey(config.seed), jnp.zeros((1, size, size, 3)))
    if config.model.pretrained_file:
        from pipnet_jax.torch_port import load_backbone_weights, load_torch_checkpoint

        state, _ = load_torch_checkpoint(config.model.pretrained_file)
        variables = load_backbone_weights(state, model, variables)
    return variables


def _finite(tree) -> bool:
    return bool(jax.tree_util.tree_reduce(
        lambda ok, x: ok and bool(jnp.all(jnp.isfinite(x))),
        jax.tree_util.tree_leaves(tree), True))


def train_and_evaluate(config, workdir: str, data=None, sources=None, stc: bool = False,
                       initial_variables=None, epoch_steps: Optional[int] = None) -> dict:
    """Trains (resuming from the workdir's latest checkpoint), then evaluates every eval
    split; returns the results dict also written to <workdir>/results.json.

    A curriculum round passes its `sources` (labeled + pseudo-labeled, each with a task) and
    stc=True: the model then also has the pooled score maps and the loss is masked per task.
    initial_variables (e.g. the teacher's, to warm-start a student) replace the init.
    epoch_steps replaces the sources' steps per epoch in the schedule (length and learning-rate
    decay), e.g. to give a labeled-only control run a student's schedule."""
    import os
    import time

    from clu import metric_writers
    from tqdm import tqdm

    from pipnet_jax import parallel
    from pipnet_jax.checkpoint import Checkpointer, PreemptionFlag, abstract_like
    from pipnet_jax.data import experiment_data

    parallel.initialize_distributed()
    check_workdir_config(config, workdir)
    mesh = parallel.make_mesh()
    is_main = jax.process_index() == 0
    data = data or experiment_data.prepare(config, workdir)
    model = build_model(config, data.landmark_set.num_points, stc=stc)
    per_host = parallel.check_batch_size(config.train.batch_size, mesh)
    steps_per_epoch = epoch_steps or data.steps_per_epoch(per_host, sources)
    total_steps = config.train.max_steps or config.train.num_epochs * steps_per_epoch
    tx, schedule = make_optimizer(config.train, steps_per_epoch)

    state = create_train_state(initial_variables or init_variables(model, config), tx)
    state = jax.device_put(state, parallel.replicated(mesh))
    checkpoints = Checkpointer(os.path.join(workdir, "checkpoints"), config.train.keep_checkpoints)
    start = 0
    results_before = None
    if checkpoints.latest_step() is not None:
        state, record = checkpoints.restore(abstract_like(state))
        start = int(record["step"])
        if is_main:
            print(f"resuming {workdir} at step {start}/{total_steps}")
    elif is_main:
        results_before = evaluate(config, workdir, model, state, data, tag="before")

    t = config.train
    inputs = ("image", "landmarks") + (("task",) if stc else ())
    step_fn = jax.jit(
        make_train_step(model, tx, data.neighbors, input_size=config.model.input_size,
                        cls_loss=t.cls_loss, reg_loss=t.reg_loss, cls_weight=t.cls_loss_weight,
                        reg_weight=t.reg_loss_weight),
        in_shardings=(parallel.replicated(mesh),) + (parallel.batch_sharding(mesh),) * len(inputs),
        out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)),
        donate_argnums=0)
    batches = data.train_batches(per_host, start_step=start, sources=sources)
    writer = metric_writers.create_default_writer(workdir, just_logging=not is_main)

    def save(step, metrics):
        if not _finite(state.params):
            raise FloatingPointError(
                f"non-finite parameters at step {step}; not saving. The last good checkpoint "
                f"in {checkpoints.directory} is kept (lower train.learning_rate?)")
        checkpoints.save(step, state, {"step": step, "epoch": step // steps_per_epoch,
                                       "loss": float(metrics["loss"]) if metrics else None})

    metrics, last_time, last_step = None, time.perf_counter(), start
    try:  # on any exit, let pending (asynchronous) checkpoint writes finish
        with PreemptionFlag() as preempted, tqdm(total=total_steps, initial=start, disable=not is_main,
                                                 desc="train", unit="step", dynamic_ncols=True) as bar:
            step, in_flight = start, []
            while step < total_steps:
                local = next(batches)
                batch = parallel.global_batch({k: local[k] for k in inputs}, mesh)
                state, metrics = step_fn(state, *(batch[k] for k in inputs))
                step += 1
                # Let the host run at most two steps ahead of the device: the input pipeline
                # still overlaps with compute, and the progress bar shows finished steps.
                in_flight.append(metrics["loss"])
                if len(in_flight) > 2:
                    jax.block_until_ready(in_flight.pop(0))
                bar.update(1)
                if step % t.log_every_steps == 0 or step == total_steps:
                    metrics = jax.device_get(metrics)
                    if not np.isfinite(metrics["loss"]):
                        raise FloatingPointError(
                            f"loss is {metrics['loss']} at step {step}; stopping. The last good "
                            f"checkpoint in {checkpoints.directory} is kept (lower train.learning_rate?)")
                    now = time.perf_counter()
                    rate = (step - last_step) * config.train.batch_size / (now - last_time)
                    last_time, last_step = now, step
                    writer.write_scalars(step, {**{k: float(v) for k, v in metrics.items()},
                                                "learning_rate": float(schedule(step - 1)),
                                                "images_per_s": rate, "epoch": step / steps_per_epoch})
                    bar.set_postfix(loss=f"{float(metrics['loss']):.4f}", img_s=f"{rate:.1f}")
                if step % t.checkpoint_every_steps == 0 or preempted:
                    save(step, jax.device_get(metrics))
                if preempted:
                    if is_main:
                        print(f"signal {preempted.signal}: checkpoint saved at step {step}; stopping")
                    return {"preempted_at_step": step}
        if checkpoints.latest_step() != step:
            save(step, jax.device_get(metrics))
    finally:
        checkpoints.close()
    results = evaluate(config, workdir, model, state, data, tag="final", writer=writer, step=step)
    if is_main and results_before is not None:
        print("NME before training -> after:")
        for split in results:
            print(f"  {split}: {100 * results_before[split]['nme']:.2f}% -> {100 * results[split]['nme']:.2f}%")
    writer.flush()
    return results


def evaluate(config, workdir: str, model, variables_or_state, data, tag: str = "final",
             writer=None, step: int = 0) -> dict:
    """NME/FR/AUC of every eval split and cross-domain set (data.eval_sets); on process 0
    writes results[_<tag>].json (keys: split, or '<dataset>/<split>'), a CED plot and a
    picture of predictions on the first eval split, and prints a table."""
    import os

    from pipnet_jax.checkpoint import write_json_atomic
    from pipnet_jax.evaluate import draw_ced, draw_predictions, format_table, predict_split, split_metrics

    if hasattr(variables_or_state, "params"):
        variables = {"params": variables_or_state.params, "batch_stats": variables_or_state.batch_stats}
    else:
        variables = variables_or_state
    variables = jax.device_get(variables)  # evaluation runs on each host's first device
    predict = make_predict_fn(model, data.neighbors, config.model.input_size)
    results, curves = {}, {}
    for ev in data.eval_sets:
        pred, gt, images = predict_split(lambda im: predict(variables, im)[0],
                                         ev.batches(config.eval.batch_size))
        r = split_metrics(pred, gt, data.landmark_set)
        curves[ev.key] = r.pop("nmes")
        results[ev.key] = r
        if ev.key == data.eval_splits[0]:
            picture = draw_predictions(images[:config.eval.num_pictures], pred, gt)
    if jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        suffix = "" if tag == "final" else f"_{tag}"
        write_json_atomic(os.path.join(workdir, f"results{suffix}.json"), results)
        draw_ced(os.path.join(workdir, f"ced{suffix}.png"), curves)
        import cv2
        cv2.imwrite(os.path.join(workdir, f"predictions{suffix}.png"), picture[..., ::-1])
        if writer is not None:
            writer.write_scalars(step, {f"eval/{s}/{k}": v for s, r in results.items()
                                        for k, v in r.items() if k != "count"})
            writer.write_images(step, {"eval/predictions": picture[None]})
        print(f"evaluation ({tag}):\n{format_table(results)}")
    return results


def evaluate_checkpoint(config, workdir: str) -> dict:
    """--mode=eval: the workdir's latest checkpoint, or a PyTorch .pth given as
    config.eval.torch_checkpoint (converted on the fly; a released file is recognised by its
    sha256 and must match the config's landmark count and backbone)."""
    import os

    from pipnet_jax.checkpoint import Checkpointer, abstract_like
    from pipnet_jax.data import experiment_data

    data = experiment_data.prepare(config, workdir)
    model = build_model(config, data.landmark_set.num_points)
    if config.eval.torch_checkpoint:
        from pipnet_jax.torch_port import from_torch_state_dict, load_torch_checkpoint

        state, released = load_torch_checkpoint(config.eval.torch_checkpoint)
        print(f"{config.eval.torch_checkpoint}: " + (f"released model {released.file}" if released
                                                      else "not a released checkpoint (sha256 unknown)"))
        variables = from_torch_state_dict(state, model)
        return evaluate(config, workdir, model, variables, data, tag="torch")
    directory = os.path.join(workdir, "checkpoints")
    checkpoints = Checkpointer(directory)
    if checkpoints.latest_step() is None:
        raise FileNotFoundError(f"no checkpoint in {directory}; train first or give "
                                f"--config.eval.torch_checkpoint=FILE.pth")
    tx, _ = make_optimizer(config.train, 1)
    abstract = jax.eval_shape(lambda: create_train_state(init_variables(model, config), tx))
    state, record = checkpoints.restore(abstract_like(abstract))
    checkpoints.close()
    print(f"evaluating {directory} at step {record['step']}")
    return evaluate(config, workdir, model, state, data, tag="final")
