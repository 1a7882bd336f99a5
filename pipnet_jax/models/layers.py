"""Building blocks with PyTorch semantics.

Module names follow the PyTorch attribute names exactly (Flax accepts names such as
"layer1.0" or "0"), so a Flax variable path joined with "." is the PyTorch state-dict key
(see torch_port.py). Convolution kernels are HWIO; PyTorch stores OIHW.
"""
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

# torchvision's ResNet/MobileNet init: kaiming normal, fan_out, ReLU gain.
kaiming_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# The PIP head and the extra stride layers: weights ~ Normal(0, 0.001), bias 0 (spec 3.1).
head_init = nn.initializers.normal(stddev=0.001)


def conv(features: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1,
         bias: bool = False, name: str | None = None, kernel_init: Callable = kaiming_fan_out,
         dtype: Any = None) -> nn.Conv:
    """A torch.nn.Conv2d(kernel, stride, padding, groups, bias) as a Flax Conv (NHWC)."""
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                   padding=((padding, padding), (padding, padding)),
                   feature_group_count=groups, use_bias=bias, kernel_init=kernel_init,
                   bias_init=nn.initializers.zeros, dtype=dtype, name=name)


class BatchNorm(nn.Module):
    """torch.nn.BatchNorm2d: eps 1e-5, momentum 0.1, running_var updated with the UNBIASED
    batch variance (Flax's BatchNorm uses the biased one), plus num_batches_tracked so a
    state dict round-trips exactly. Statistics are over every axis but the last, i.e. over
    the global batch when the batch is sharded under jit."""
    epsilon: float = 1e-5
    momentum: float = 0.1
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32)
        count = self.variable("batch_stats", "num_batches_tracked",
                              lambda: jnp.zeros((), jnp.int32))
        if train:
            xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))  # bf16 -> f32, f64 stays
            axes = tuple(range(x.ndim - 1))
            mean = jnp.mean(xf, axes)
            var = jnp.mean(jnp.square(xf - mean), axes)  # two-pass, as PyTorch
            if not self.is_initializing():
                n = x.size // c
                m = self.momentum
                ra_mean.value = (1 - m) * ra_mean.value + m * mean
                ra_var.value = (1 - m) * ra_var.value + m * var * (n / max(n - 1, 1))
                count.value = count.value + 1
        else:
            mean, var = ra_mean.value, ra_var.value
        mul = scale * jax.lax.rsqrt(var + self.epsilon)
        y = x * mul.astype(x.dtype) + (bias - mean * mul).astype(x.dtype)
        return y.astype(self.dtype or x.dtype)


def max_pool(x, kernel: int, stride: int, padding: int):
    """torch.nn.MaxPool2d (padding with -inf, floor mode), with torch's gradient: each window's
    gradient goes to its first maximum in row-major order (ties are common after a ReLU).

    Written as an explicit -inf pad and an unpadded pool, with keyword arguments: the same
    maths as nn.max_pool's own padding, in the form jax2onnx converts (it patches
    nn.max_pool with a keyword-only signature and handles "VALID" only)."""
    if padding:
        x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
                    constant_values=-jnp.inf)
    return _pool_valid(x, kernel, stride)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _pool_valid(x, kernel: int, stride: int):
    return nn.max_pool(x, window_shape=(kernel, kernel), strides=(stride, stride), padding="VALID")


def _pool_valid_fwd(x, kernel, stride):
    y = _pool_valid(x, kernel, stride)
    return y, (x, y)


def _pool_valid_bwd(kernel, stride, residuals, g):
    """The gradient without XLA's select-and-scatter (3x slower than this on CPU): for each of
    the k*k window offsets, the strided slice of x that it reads; the first offset whose value
    equals the window's max takes the window's gradient, scattered back by an interior pad."""
    x, y = residuals
    b, h, w, c = x.shape
    oh, ow = y.shape[1:3]
    span_h, span_w = (oh - 1) * stride + 1, (ow - 1) * stride + 1
    offsets = [(di, dj) for di in range(kernel) for dj in range(kernel)]
    taken, firsts = jnp.zeros(y.shape, bool), {}
    for di, dj in offsets:  # window scan order: the first maximum wins
        window = lax.slice(x, (0, di, dj, 0), (b, di + span_h, dj + span_w, c), (1, stride, stride, 1))
        firsts[di, dj] = (window == y) & ~taken
        taken = taken | firsts[di, dj]
    dx = jnp.zeros_like(x)
    # An input that is the maximum of several (overlapping) windows sums their gradients in
    # torch's order (windows row-major, i.e. offsets from the last), so the sums match too.
    for di, dj in reversed(offsets):
        dx = dx + lax.pad(jnp.where(firsts[di, dj], g, 0).astype(x.dtype), jnp.zeros((), x.dtype),
                          ((0, 0, 0), (di, h - di - span_h, stride - 1),
                           (dj, w - dj - span_w, stride - 1), (0, 0, 0)))
    return (dx,)


_pool_valid.defvjp(_pool_valid_fwd, _pool_valid_bwd)


def relu6(x):
    return jnp.clip(x, 0.0, 6.0)


def hard_sigmoid(x):
    """d-li14 MobileNetV3 h_sigmoid: ReLU6(x + 3) / 6."""
    return relu6(x + 3.0) / 6.0


def hard_swish(x):
    return x * hard_sigmoid(x)
