import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from pipnet_jax.losses import pip_loss, task_ids
from pipnet_jax.models import PIPOutput
from pipnet_jax.bench.reference_torch import reference_loss
from pipnet_jax.targets import batch_targets

B, N, C, H = 3, 7, 3, 8


def random_batch(seed=0, stc=False):
    rng = np.random.RandomState(seed)
    landmarks = rng.uniform(-0.1, 1.1, (B, N, 2)).astype(np.float32)
    neighbors = np.stack([rng.permutation([k for k in range(N) if k != i])[:C] for i in range(N)])
    shape = lambda k: (B, H, H, k)
    out = dict(score=rng.randn(*shape(N)), offset_x=rng.randn(*shape(N)), offset_y=rng.randn(*shape(N)),
               neighbor_x=rng.randn(*shape(C * N)), neighbor_y=rng.randn(*shape(C * N)))
    if stc:
        out.update(score_cls2=rng.randn(B, 4, 4, N), score_cls3=rng.randn(B, 2, 2, N))
    output = PIPOutput(**{k: jnp.asarray(v, jnp.float32) for k, v in out.items()})
    return output, batch_targets(landmarks, neighbors, (H, H), stc=stc)


def nchw(x):
    return torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())


def test_loss_equals_original_formula_in_torch():
    output, targets = random_batch()
    loss, terms = pip_loss(output, targets)
    names = ("score", "offset_x", "offset_y", "neighbor_x", "neighbor_y")
    ref, ref_terms = reference_loss(tuple(nchw(getattr(output, n)) for n in names),
                                    tuple(nchw(getattr(targets, n)) for n in names))
    np.testing.assert_allclose(float(loss), float(ref), rtol=1e-5)
    for (k, v), r in zip(terms.items(), ref_terms):
        np.testing.assert_allclose(float(v), float(r), rtol=1e-5, err_msg=k)


def test_masked_loss_all_std_equals_plain():
    output, targets = random_batch(1, stc=True)
    plain, plain_terms = pip_loss(output, targets)
    masked, masked_terms = pip_loss(output, targets, task=task_ids(["std"] * B))
    np.testing.assert_allclose(float(masked), float(plain), rtol=1e-6)
    for k in plain_terms:
        np.testing.assert_allclose(float(masked_terms[k]), float(plain_terms[k]), rtol=1e-6)


@pytest.mark.parametrize("task,live", [("cls2", "score_cls2"), ("cls3", "score_cls3")])
def test_coarse_tasks_only_touch_their_map(task, live):
    output, targets = random_batch(2, stc=True)
    tasks = task_ids([task] * B)
    grads = jax.grad(lambda o: pip_loss(o, targets, task=tasks)[0])(output)
    for name in ("score", "offset_x", "offset_y", "neighbor_x", "neighbor_y", "score_cls2", "score_cls3"):
        nonzero = bool(np.any(np.asarray(getattr(grads, name)) != 0))
        assert nonzero == (name == live), name
    # value: sum of squared errors over that map / number of its cells (x10), offsets 0
    pred, tgt = getattr(output, live), getattr(targets, live)
    expected = 10 * np.mean((np.asarray(pred) - np.asarray(tgt)) ** 2)
    np.testing.assert_allclose(float(pip_loss(output, targets, task=tasks)[0]), expected, rtol=1e-5)


def test_mixed_batch_normalisation():
    """Spec 8.2: sum over unmasked cells / number of unmasked cells in the whole batch."""
    output, targets = random_batch(3, stc=True)
    _, terms = pip_loss(output, targets, task=task_ids(["std", "cls3", "cls2"]))
    sq = lambda name, b: np.sum((np.asarray(getattr(output, name))[b] - np.asarray(getattr(targets, name))[b]) ** 2)
    expected = (sq("score", 0) + sq("score_cls3", 1) + sq("score_cls2", 2)) / (N * (64 + 4 + 16))
    np.testing.assert_allclose(float(terms["score"]), expected, rtol=1e-5)


def test_score_loss_options():
    output, targets = random_batch(4)
    p = np.asarray(output.score).reshape(B, H * H, N).transpose(0, 2, 1)
    t = np.asarray(targets.score).reshape(B, H * H, N).transpose(0, 2, 1)
    logp = p - np.log(np.exp(p).sum(-1, keepdims=True))
    np.testing.assert_allclose(float(pip_loss(output, targets, cls_loss="ce")[1]["score"]),
                               -(logp * t).sum(-1).mean(), rtol=1e-5)
    bce = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
    np.testing.assert_allclose(float(pip_loss(output, targets, cls_loss="bce")[1]["score"]),
                               bce.mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="cls_loss"):
        pip_loss(output, targets, cls_loss="focal")
    with pytest.raises(ValueError, match="unknown task"):
        task_ids(["std", "cls9"])
