"""PIPNet: backbone -> [extra stride-2 layers] -> five parallel 1x1 heads (spec 3)."""
from typing import Any, Optional

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from pipnet_jax.models.layers import BatchNorm, conv, head_init, max_pool
from pipnet_jax.models.mobilenet import mobilenet_v2_features, mobilenet_v3_features
from pipnet_jax.models.resnet import RESNET_BLOCKS, resnet_features

FEATURE_CHANNELS = {"resnet18": 512, "resnet50": 2048, "resnet101": 2048,
                    "mobilenet_v2": 1280, "mobilenet_v3": 960}
BACKBONES = tuple(FEATURE_CHANNELS)
NET_STRIDES = (32, 64, 128)


@flax.struct.dataclass
class PIPOutput:
    """Raw head outputs, NHWC. score/offset_*: (B, H, W, N); neighbor_*: (B, H, W, C*N) with
    channel i*C + j = landmark i's offset to its j-th mean-face neighbor. With stc=True also
    the score maps of the 2x and 4x max-pooled features (the curriculum's 'cls2' / 'cls3'
    tasks; 4x4 and 2x2 at stride 32), else None."""
    score: jax.Array
    offset_x: jax.Array
    offset_y: jax.Array
    neighbor_x: jax.Array
    neighbor_y: jax.Array
    score_cls2: Optional[jax.Array] = None
    score_cls3: Optional[jax.Array] = None


class PIPNet(nn.Module):
    """`apply(variables, images, train=False)`: images float32 NHWC, ImageNet-normalised.

    Variable names equal the PyTorch state-dict keys joined by '.', so torch_port.py is a
    mechanical mapping. dtype (e.g. jnp.bfloat16) sets the compute type; params stay float32
    and outputs are returned in float32."""
    num_landmarks: int
    backbone: str = "resnet18"
    num_neighbors: int = 10
    net_stride: int = 32
    stc: bool = False
    dtype: Any = None

    @nn.compact
    def __call__(self, images, train: bool = False) -> PIPOutput:
        if self.backbone not in FEATURE_CHANNELS:
            raise ValueError(f"unknown backbone {self.backbone!r}; expected one of {BACKBONES}")
        if self.net_stride not in NET_STRIDES:
            raise ValueError(f"net_stride must be one of {NET_STRIDES}, got {self.net_stride}")
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be NHWC with 3 channels, got shape {images.shape}")
        if images.shape[1] % self.net_stride or images.shape[2] % self.net_stride:
            raise ValueError(f"image height and width must be multiples of net_stride "
                             f"{self.net_stride}, got {images.shape[1]}x{images.shape[2]}")
        x = images.astype(self.dtype) if self.dtype else images
        if self.backbone in RESNET_BLOCKS:
            x = resnet_features(x, self.backbone, train, self.dtype)
        elif self.backbone == "mobilenet_v2":
            x = mobilenet_v2_features(x, train, self.dtype)
        else:
            x = mobilenet_v3_features(x, train, self.dtype)
        # Extra stride-2 layers (spec 3.2); the heads then see 512 channels for every backbone.
        for i in range({32: 0, 64: 1, 128: 2}[self.net_stride]):
            x = conv(512, 3, 2, 1, bias=True, kernel_init=head_init, name=f"layer{5 + i}",
                     dtype=self.dtype)(x)
            x = nn.relu(BatchNorm(name=f"bn{5 + i}")(x, train))

        n, c = self.num_landmarks, self.num_neighbors

        def head(name, features):
            return conv(features, 1, bias=True, kernel_init=head_init, name=name, dtype=self.dtype)

        cls_layer = head("cls_layer", n)
        f32 = lambda y: y.astype(jnp.float32)
        out = dict(score=f32(cls_layer(x)), offset_x=f32(head("x_layer", n)(x)),
                   offset_y=f32(head("y_layer", n)(x)),
                   neighbor_x=f32(head("nb_x_layer", c * n)(x)),
                   neighbor_y=f32(head("nb_y_layer", c * n)(x)))
        if self.stc:  # spec 3.4: same cls_layer on 2x2-max-pooled features
            x2 = max_pool(x, 2, 2, 0)
            out["score_cls2"] = f32(cls_layer(x2))
            out["score_cls3"] = f32(cls_layer(max_pool(x2, 2, 2, 0)))
        return PIPOutput(**out)
