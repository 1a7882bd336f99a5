"""ResNet-18/50/101 trunks in torchvision's layout (ResNet-50/101 are v1.5: stride on the 3x3
conv). Module names equal torchvision's attribute names; no avgpool / fc (PIPNet drops them)."""
from typing import Any

import flax.linen as nn

from pipnet_jax.models.layers import BatchNorm, conv, max_pool

RESNET_BLOCKS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet50": ("bottleneck", (3, 4, 6, 3)),
                 "resnet101": ("bottleneck", (3, 4, 23, 3))}


class BasicBlock(nn.Module):
    planes: int
    stride: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool):
        y = conv(self.planes, 3, self.stride, 1, name="conv1", dtype=self.dtype)(x)
        y = nn.relu(BatchNorm(name="bn1")(y, train))
        y = conv(self.planes, 3, 1, 1, name="conv2", dtype=self.dtype)(y)
        y = BatchNorm(name="bn2")(y, train)
        return nn.relu(y + _shortcut(x, self.planes, self.stride, train, self.dtype))


class Bottleneck(nn.Module):
    planes: int
    stride: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool):
        y = conv(self.planes, 1, name="conv1", dtype=self.dtype)(x)
        y = nn.relu(BatchNorm(name="bn1")(y, train))
        y = conv(self.planes, 3, self.stride, 1, name="conv2", dtype=self.dtype)(y)
        y = nn.relu(BatchNorm(name="bn2")(y, train))
        y = conv(self.planes * 4, 1, name="conv3", dtype=self.dtype)(y)
        y = BatchNorm(name="bn3")(y, train)
        return nn.relu(y + _shortcut(x, self.planes * 4, self.stride, train, self.dtype))


class Downsample(nn.Module):
    """torchvision's `downsample` Sequential: 1x1 strided conv (key .0) + BN (key .1)."""
    features: int
    stride: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool):
        x = conv(self.features, 1, self.stride, name="0", dtype=self.dtype)(x)
        return BatchNorm(name="1")(x, train)


def _shortcut(x, features, stride, train, dtype):
    if stride == 1 and x.shape[-1] == features:
        return x
    return Downsample(features, stride, dtype, name="downsample")(x, train)


def resnet_features(x, arch: str, train: bool, dtype: Any = None):
    """The stride-32 feature map (512 channels for ResNet-18, 2048 otherwise).

    A function, not a Module: called inside a compact module, its layers are named at the
    top level (conv1, bn1, layer1.0, ...) exactly like torchvision's state-dict keys."""
    kind, blocks = RESNET_BLOCKS[arch]
    block = BasicBlock if kind == "basic" else Bottleneck
    x = conv(64, 7, 2, 3, name="conv1", dtype=dtype)(x)
    x = nn.relu(BatchNorm(name="bn1")(x, train))
    x = max_pool(x, 3, 2, 1)
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for b in range(n):
            stride = 1 if stage == 1 or b > 0 else 2
            x = block(planes, stride, dtype, name=f"layer{stage}.{b}")(x, train)
    return x
