"""MobileNetV2 (torchvision layout) and MobileNetV3-Large (d-li14 layout, spec 3.3) trunks.

Like resnet.py these are functions called inside PIPNet's compact scope, so the layer names
(features.0.0, features.1.conv.0.0, conv.0, ...) equal the PyTorch state-dict keys."""
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from pipnet_jax.models.layers import BatchNorm, conv, hard_sigmoid, hard_swish, relu6

# (t, c, n, s) of torchvision's MobileNetV2 and (k, t, c, SE, HS, s) of MobileNetV3-Large.
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
MOBILENET_V3_LARGE = (
    (3, 1, 16, 0, 0, 1), (3, 4, 24, 0, 0, 2), (3, 3, 24, 0, 0, 1), (5, 3, 40, 1, 0, 2),
    (5, 3, 40, 1, 0, 1), (5, 3, 40, 1, 0, 1), (3, 6, 80, 0, 1, 2), (3, 2.5, 80, 0, 1, 1),
    (3, 2.3, 80, 0, 1, 1), (3, 2.3, 80, 0, 1, 1), (3, 6, 112, 1, 1, 1), (3, 6, 112, 1, 1, 1),
    (5, 6, 160, 1, 1, 2), (5, 6, 160, 1, 1, 1), (5, 6, 160, 1, 1, 1))


def make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNAct(nn.Module):
    """torchvision Conv2dNormActivation / d-li14 conv_*_bn: conv (key 0), BN (key 1), act."""
    features: int
    kernel: int
    stride: int = 1
    groups: int = 1
    act: Callable = relu6
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool):
        x = conv(self.features, self.kernel, self.stride, (self.kernel - 1) // 2, self.groups,
                 name="0", dtype=self.dtype)(x)
        return self.act(BatchNorm(name="1")(x, train))


class MobileV2Block(nn.Module):
    features: int
    stride: int
    expansion: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool):
        inp = x.shape[-1]
        hidden = int(round(inp * self.expansion))
        y, i = x, 0
        if self.expansion != 1:
            y = ConvBNAct(hidden, 1, dtype=self.dtype, name="conv.0")(y, train)
            i = 1
        y = ConvBNAct(hidden, 3, self.stride, hidden, dtype=self.dtype, name=f"conv.{i}")(y, train)
        y = conv(self.features, 1, name=f"conv.{i + 1}", dtype=self.dtype)(y)
        y = BatchNorm(name=f"conv.{i + 2}")(y, train)
        return x + y if self.stride == 1 and inp == self.features else y


def mobilenet_v2_features(x, train: bool, dtype: Any = None):
    """torchvision mobilenet_v2().features: stride 32, 1280 channels."""
    x = ConvBNAct(32, 3, 2, dtype=dtype, name="features.0")(x, train)
    idx = 1
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            x = MobileV2Block(c, s if i == 0 else 1, t, dtype, name=f"features.{idx}")(x, train)
            idx += 1
    return ConvBNAct(1280, 1, dtype=dtype, name=f"features.{idx}")(x, train)


class SqueezeExcite(nn.Module):
    """avg-pool -> Linear (fc.0) -> ReLU -> Linear (fc.2) -> h_sigmoid, multiply."""
    dtype: Any = None

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        y = jnp.mean(x, axis=(1, 2))
        y = nn.relu(nn.Dense(make_divisible(c // 4, 8), dtype=self.dtype, name="fc.0")(y))
        y = hard_sigmoid(nn.Dense(c, dtype=self.dtype, name="fc.2")(y))
        return x * y[:, None, None, :]


class MobileV3Block(nn.Module):
    """d-li14 InvertedResidual; layer indices follow its nn.Sequential (Identity keeps a slot)."""
    hidden: int
    features: int
    kernel: int
    stride: int
    use_se: bool
    use_hs: bool
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool):
        inp, act = x.shape[-1], (hard_swish if self.use_hs else nn.relu)
        d = self.dtype

        def dw(name):
            return conv(self.hidden, self.kernel, self.stride, (self.kernel - 1) // 2,
                        self.hidden, name=name, dtype=d)

        def se(y, name):
            return SqueezeExcite(d, name=name)(y) if self.use_se else y

        if inp == self.hidden:  # dw -> BN -> act -> SE -> pw -> BN
            y = act(BatchNorm(name="conv.1")(dw("conv.0")(x), train))
            y = se(y, "conv.3")
            y = BatchNorm(name="conv.5")(conv(self.features, 1, name="conv.4", dtype=d)(y), train)
        else:  # pw -> BN -> act -> dw -> BN -> SE -> act -> pw-linear -> BN
            y = conv(self.hidden, 1, name="conv.0", dtype=d)(x)
            y = act(BatchNorm(name="conv.1")(y, train))
            y = BatchNorm(name="conv.4")(dw("conv.3")(y), train)
            y = act(se(y, "conv.5"))
            y = BatchNorm(name="conv.8")(conv(self.features, 1, name="conv.7", dtype=d)(y), train)
        return x + y if self.stride == 1 and inp == self.features else y


def mobilenet_v3_features(x, train: bool, dtype: Any = None):
    """d-li14 MobileNetV3-Large `features` then `conv` (1x1 -> 960, BN, h-swish)."""
    x = ConvBNAct(16, 3, 2, act=hard_swish, dtype=dtype, name="features.0")(x, train)
    for idx, (k, t, c, use_se, use_hs, s) in enumerate(MOBILENET_V3_LARGE, start=1):
        hidden = make_divisible(x.shape[-1] * t, 8)
        x = MobileV3Block(hidden, make_divisible(c, 8), k, s, bool(use_se), bool(use_hs), dtype,
                          name=f"features.{idx}")(x, train)
    return ConvBNAct(hidden, 1, act=hard_swish, dtype=dtype, name="conv")(x, train)
