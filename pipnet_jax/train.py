"""Training state and the train step: normalise, targets, forward, loss, Adam (spec 8, 9)."""
from typing import Any, Callable

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
    map_size = (input_size // model.net_stride,) * 2

    def loss_fn(params, batch_stats, images, landmarks, task):
        output, updates = model.apply({"params": params, "batch_stats": batch_stats},
                                      normalize_images(images), train=True,
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
