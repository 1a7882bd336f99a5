"""Training: the state, the train step (normalise, targets, forward, loss, Adam; spec 8, 9) and
the loop. The loop receives its model and Dataset (experiment.py builds them) and returns a
`TrainResult`; it reads no config sections but `train`, `model.input_size` and `seed`."""
import dataclasses
import os
import time
from typing import Any, Callable, Optional

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from pipnet_jax import parallel
from pipnet_jax.checkpoint import Checkpointer, PreemptionFlag, abstract_like
from pipnet_jax.images import normalize_images
from pipnet_jax.losses import pip_loss
from pipnet_jax.targets import batch_targets
from pipnet_jax.torch_port import load_backbone_weights, load_torch_checkpoint


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
    """A pure train_step(state, batch) -> (state, metrics); batch: image uint8 (B,H,W,3),
    landmarks (B,N,2) in [0,1] and, for a curriculum round, task (B,) (int, losses.TASKS).
    BatchNorm runs in train mode on the whole (global) batch."""
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

    def train_step(state: TrainState, batch: dict):
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (terms, batch_stats)), grads = grad_fn(state.params, state.batch_stats, batch["image"],
                                                      batch["landmarks"], batch.get("task"))
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                                  opt_state=opt_state)
        return new_state, {"loss": loss, **{f"loss_{k}": v for k, v in terms.items()}}

    return train_step


def shard_train_step(train_step: Callable, mesh) -> Callable:
    """jit over `mesh`: the state replicated (and donated), the batch dict sharded over 'data'."""
    return jax.jit(train_step, in_shardings=(parallel.replicated(mesh), parallel.batch_sharding(mesh)),
                   out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)),
                   donate_argnums=0)


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

@dataclasses.dataclass(frozen=True)
class TrainResult:
    step: int                       # the last step trained (and checkpointed)
    preempted: bool                 # stopped by SIGTERM/SIGINT after saving; rerun to resume
    variables: Any = None           # {'params', 'batch_stats'} when finished
    results: Optional[dict] = None  # the final evaluation, when finished and evaluated
    results_before: Optional[dict] = None   # the evaluation before the first step (fresh runs)


def init_variables(model, config) -> dict:
    """Random init (seeded), then the ImageNet backbone weights when the config names them."""
    size = config.model.input_size
    variables = model.init(jax.random.PRNGKey(config.seed), jnp.zeros((1, size, size, 3)))
    if config.model.pretrained_file:
        state, _ = load_torch_checkpoint(config.model.pretrained_file)
        variables = load_backbone_weights(state, model, variables)
    return variables


def _finite(tree) -> bool:
    return bool(jax.tree_util.tree_reduce(
        lambda ok, x: ok and bool(jnp.all(jnp.isfinite(x))),
        jax.tree_util.tree_leaves(tree), True))


def variables_of(state: TrainState) -> dict:
    return {"params": state.params, "batch_stats": state.batch_stats}


class NoWriter:
    """The metric writer used when none is given (clu's writers import TensorFlow)."""

    def write_scalars(self, step, scalars):
        pass

    def write_images(self, step, images):
        pass

    def flush(self):
        pass


def with_stop_vote(train_step: Callable) -> Callable:
    """The hosts agree on stopping: each host's preemption flag rides in its part of the batch
    ('stop', one int per face) and the step returns its maximum over the global batch, so every
    host reads the same verdict for the same step and all stop (and save) at one step."""
    def step(state, batch):
        state, metrics = train_step(state, {k: v for k, v in batch.items() if k != "stop"})
        return state, {**metrics, "stop": jnp.max(batch["stop"])}

    return step


def loop_train_step(config, model, tx, neighbors, mesh) -> Callable:
    """The loop's jitted step as the config asks: batch dict {'image', 'landmarks', ['task'],
    'stop': int32 (B,)} sharded over `mesh`; the dry run compiles this same function."""
    t = config.train
    return shard_train_step(with_stop_vote(
        make_train_step(model, tx, neighbors, input_size=config.model.input_size, cls_loss=t.cls_loss,
                        reg_loss=t.reg_loss, cls_weight=t.cls_loss_weight, reg_weight=t.reg_loss_weight)), mesh)


def train(config, workdir: str, model, dataset, evaluate: Optional[Callable] = None,
          initial_variables=None, writer=None) -> TrainResult:
    """Trains `model` on `dataset` (its train_batches / steps_per_epoch / neighbors), resuming
    from <workdir>/checkpoints. evaluate(variables, tag, writer=, step=) -> results, when
    given, runs (on every host) before the first step of a fresh run and after the last, and
    every train.eval_every_steps steps into eval_curve.csv (tag 'curve').
    initial_variables (e.g. a teacher's) replace the seeded init. writer: a clu metric writer
    (TensorBoard).

    SIGTERM / SIGINT on any host stops every host at the same step, two steps after the
    signal (the vote travels with the batches): one checkpoint is written and the result
    says preempted; a rerun resumes from it."""
    with PreemptionFlag() as preempted:  # from the start: a signal during set-up is not lost
        return _train(config, workdir, model, dataset, evaluate, initial_variables, writer, preempted)


def _train(config, workdir, model, dataset, evaluate, initial_variables, writer, preempted) -> TrainResult:
    mesh = parallel.make_mesh()
    is_main = jax.process_index() == 0
    t = config.train
    writer = writer or NoWriter()
    per_host = parallel.check_batch_size(t.batch_size, mesh)
    steps_per_epoch = dataset.steps_per_epoch(per_host)
    total_steps = t.max_steps or t.num_epochs * steps_per_epoch
    tx, schedule = make_optimizer(t, steps_per_epoch)

    state = create_train_state(initial_variables or init_variables(model, config), tx)
    state = jax.device_put(state, parallel.replicated(mesh))
    checkpoints = Checkpointer(os.path.join(workdir, "checkpoints"), t.keep_checkpoints)
    start, results_before = 0, None
    if checkpoints.latest_step() is not None:
        state, record = checkpoints.restore(abstract_like(state))
        start = int(record["step"])
        if is_main:
            print(f"resuming {workdir} at step {start}/{total_steps}")
    elif evaluate is not None:  # every host: evaluation is sharded over all devices
        results_before = evaluate(variables_of(state), "before")
        if t.eval_every_steps:
            evaluate(variables_of(state), "curve", writer=writer, step=0)

    step_fn = loop_train_step(config, model, tx, dataset.neighbors, mesh)
    batches = dataset.train_batches(per_host, start_step=start)

    def save(step, metrics):
        if not _finite(state.params):
            raise FloatingPointError(
                f"non-finite parameters at step {step}; not saving. The last good checkpoint "
                f"in {checkpoints.directory} is kept (lower train.learning_rate?)")
        checkpoints.save(step, state, {"step": step, "epoch": step // steps_per_epoch,
                                       "loss": float(metrics["loss"]) if metrics else None})

    metrics, last_time, last_step = None, time.perf_counter(), start
    try:  # on any exit, let pending (asynchronous) checkpoint writes finish
        with tqdm(total=total_steps, initial=start, disable=not is_main, desc="train", unit="step",
                  dynamic_ncols=True) as bar:
            step, in_flight, stop = start, [], False
            while step < total_steps:
                local = next(batches)
                local["stop"] = np.full(len(local["image"]), bool(preempted), np.int32)
                state, metrics = step_fn(state, parallel.global_batch(local, mesh))
                step += 1
                # Let the host run at most two steps ahead of the device: the input pipeline
                # still overlaps with compute, the progress bar shows finished steps, and the
                # stop vote of two steps ago is read here, at the same step on every host.
                in_flight.append(metrics["stop"])
                if len(in_flight) > 2:
                    stop = bool(jax.device_get(in_flight.pop(0)))
                metrics = {k: v for k, v in metrics.items() if k != "stop"}
                bar.update(1)
                if step % t.log_every_steps == 0 or step == total_steps:
                    metrics = jax.device_get(metrics)
                    if not np.isfinite(metrics["loss"]):
                        raise FloatingPointError(
                            f"loss is {metrics['loss']} at step {step}; stopping. The last good "
                            f"checkpoint in {checkpoints.directory} is kept (lower train.learning_rate?)")
                    now = time.perf_counter()
                    rate = (step - last_step) * t.batch_size / (now - last_time)
                    last_time, last_step = now, step
                    writer.write_scalars(step, {**{k: float(v) for k, v in metrics.items()},
                                                "learning_rate": float(schedule(step - 1)),
                                                "images_per_s": rate, "epoch": step / steps_per_epoch})
                    bar.set_postfix(loss=f"{float(metrics['loss']):.4f}", img_s=f"{rate:.1f}")
                if step % t.checkpoint_every_steps == 0 or stop:
                    save(step, jax.device_get(metrics))
                if evaluate is not None and t.eval_every_steps and not stop and (
                        step % t.eval_every_steps == 0 or step == total_steps):
                    evaluate(variables_of(state), "curve", writer=writer, step=step)
                if stop:
                    if is_main:
                        cause = (f"signal {preempted.signal}" if preempted
                                 else "a signal on another host")
                        print(f"{cause}: every host stopped at step {step}; checkpoint saved at "
                              f"step {step}; stopping")
                    return TrainResult(step, preempted=True)
        if checkpoints.latest_step() != step:
            save(step, jax.device_get(metrics))
    finally:
        checkpoints.close()
    variables = variables_of(state)
    results = None
    if evaluate is not None:
        results = evaluate(variables, "final", writer=writer, step=step)
    writer.flush()
    return TrainResult(step, preempted=False, variables=variables, results=results,
                       results_before=results_before)
