"""PIPNet losses: spec 8.1 (supervised) and the masked, sum-normalised 8.2 (STC).

The score loss is 'l2' (the original's MSE over every cell), 'l1', 'ce' (softmax cross-entropy
over the H*W cells of each landmark) or 'bce' (sigmoid BCE per cell); offsets and neighbors
use 'l1' (original) or 'l2' and are gathered only at the ground-truth cell."""
import jax
import jax.numpy as jnp
import optax

from pipnet_jax.files import TASKS  # noqa: F401  (curriculum task types, spec 8.2)

SCORE_LOSSES = ("l2", "l1", "ce", "bce")
REG_LOSSES = ("l1", "l2")


def task_ids(names) -> jax.Array:
    """['std', 'cls3', ...] -> int32 ids into TASKS."""
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown task type(s) {unknown}; expected one of {TASKS}")
    return jnp.asarray([TASKS.index(n) for n in names], jnp.int32)


def _rows(x):
    """(B, H, W, K) -> (B, K, H*W): one row per channel, cells in row-major order."""
    b, h, w, k = x.shape
    return x.reshape(b, h * w, k).transpose(0, 2, 1)


def _reg(diff, kind):
    return jnp.abs(diff) if kind == "l1" else jnp.square(diff)


def _score_terms(pred, target, kind):
    """Per-row loss sums and element counts: (B, N) each, for one score map."""
    p, t = _rows(pred), _rows(target)
    if kind == "ce":
        return optax.softmax_cross_entropy(p, t), jnp.ones(p.shape[:2])
    if kind == "l2":
        e = jnp.square(p - t)
    elif kind == "l1":
        e = jnp.abs(p - t)
    else:
        e = optax.sigmoid_binary_cross_entropy(p, t)
    return e.sum(-1), jnp.full(p.shape[:2], p.shape[-1], jnp.float32)


def _gathered(output, targets):
    """Offsets/neighbors of prediction and target at the GT cell: (B, N) and (B, N*C)."""
    pos = jnp.argmax(_rows(targets.score), axis=-1)  # (B, N): the one-hot cell (0 if none)
    c = targets.neighbor_x.shape[-1] // pos.shape[1]
    pos_nb = jnp.repeat(pos, c, axis=1)  # neighbor channel i*C + j belongs to landmark i

    def at(x, p):
        return jnp.take_along_axis(_rows(x), p[..., None], axis=-1)[..., 0]

    return {"x": (at(output.offset_x, pos), at(targets.offset_x, pos)),
            "y": (at(output.offset_y, pos), at(targets.offset_y, pos)),
            "nb_x": (at(output.neighbor_x, pos_nb), at(targets.neighbor_x, pos_nb)),
            "nb_y": (at(output.neighbor_y, pos_nb), at(targets.neighbor_y, pos_nb))}


def _safe_div(num, den):
    # The original leaves a loss unnormalised when nothing is unmasked.
    return jnp.where(den > 0, num / jnp.maximum(den, 1e-12), num)


def pip_loss(output, targets, *, cls_loss="l2", reg_loss="l1", cls_weight=10.0,
             reg_weight=1.0, task=None):
    """Total loss and its terms {'score', 'x', 'y', 'nb_x', 'nb_y'}.

    task=None: spec 8.1 (means over the batch). task (B,) int ids into TASKS: spec 8.2, with
    the 8x8, 4x4 and 2x2 score maps masked per sample and offsets only for 'std' samples;
    for an all-'std' batch both agree exactly."""
    if cls_loss not in SCORE_LOSSES:
        raise ValueError(f"cls_loss must be one of {SCORE_LOSSES}, got {cls_loss!r}")
    if reg_loss not in REG_LOSSES:
        raise ValueError(f"reg_loss must be one of {REG_LOSSES}, got {reg_loss!r}")
    b = output.score.shape[0]
    if task is None:
        score_masks = [jnp.ones((b,))]
        maps = [(output.score, targets.score)]
        reg_mask = jnp.ones((b,))
    else:
        if output.score_cls2 is None or targets.score_cls2 is None:
            raise ValueError("masked (STC) loss needs the model and targets built with stc=True")
        score_masks = [(task <= 1).astype(jnp.float32), (task == 2).astype(jnp.float32),
                       (task == 3).astype(jnp.float32)]
        maps = [(output.score, targets.score), (output.score_cls2, targets.score_cls2),
                (output.score_cls3, targets.score_cls3)]
        reg_mask = (task == 0).astype(jnp.float32)
    num = den = 0.0
    for m, (pred, target) in zip(score_masks, maps):
        sums, counts = _score_terms(pred, target, cls_loss)
        num = num + jnp.sum(m[:, None] * sums)
        den = den + jnp.sum(m[:, None] * counts)
    terms = {"score": _safe_div(num, den)}
    for name, (pred, target) in _gathered(output, targets).items():
        w = reg_mask[:, None]
        terms[name] = _safe_div(jnp.sum(w * _reg(pred - target, reg_loss)),
                                jnp.sum(w * jnp.ones_like(pred)))
    total = cls_weight * terms["score"] + reg_weight * (
        terms["x"] + terms["y"] + terms["nb_x"] + terms["nb_y"])
    return total, terms
