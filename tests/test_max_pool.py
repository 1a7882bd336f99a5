"""models.layers.max_pool: torch.nn.MaxPool2d's output and, without XLA's select-and-scatter,
its gradient to the bit: each window's gradient goes to its first maximum (ties are common
after a ReLU) and overlapping windows' gradients sum in torch's order."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from pipnet_jax.models.layers import max_pool


@pytest.mark.parametrize("shape,kernel,stride,padding", [((2, 9, 11, 3), 3, 2, 1), ((2, 8, 8, 4), 2, 2, 0),
                                                         ((1, 32, 32, 8), 3, 2, 1)])
def test_output_and_gradient_equal_torch(shape, kernel, stride, padding):
    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal(shape).astype(np.float32), 0)  # ReLU: ties at 0
    x[0, :4, :4, :] = 0.5  # a plateau of equal maxima
    y, vjp = jax.vjp(lambda v: max_pool(v, kernel, stride, padding), jnp.asarray(x))
    g = rng.standard_normal(y.shape).astype(np.float32)
    (dx,) = vjp(jnp.asarray(g))
    tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
    ty = torch.nn.functional.max_pool2d(tx, kernel, stride, padding)
    ty.backward(torch.from_numpy(g.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_array_equal(np.asarray(y), ty.detach().numpy().transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(np.asarray(dx), tx.grad.numpy().transpose(0, 2, 3, 1))
