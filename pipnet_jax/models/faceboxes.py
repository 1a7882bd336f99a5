"""FaceBoxesV2 (spec 14), the original demo's face detector, as Flax modules (NHWC).

Module names equal the PyTorch attribute names, so torch_port converts the released
FaceBoxesV2.pth like a PIPNet checkpoint. The anchor layout (MIN_SIZES, DENSIFY) is part of
the network: it fixes how many loc / conf channels each level has.

To avoid a recompile for every image size, callers may zero-pad images (bottom/right) to a
size bucket and pass the true size as `valid_hw`: every feature map is then masked back to the
region the exact-size network would have seen, so convolutions meet zeros at the true border
exactly as with the original's zero padding (detection.py drops the anchors of cells the
exact-size grid would not have). The padded run gives the exact-size result up to rounding.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from pipnet_jax.models.layers import BatchNorm, conv

MEAN_BGR = (104.0, 117.0, 123.0)
MIN_SIZES = ((32, 64, 128), (256,), (512,))
STEPS = (32, 64, 128)
# Sub-grid offsets (fractions of a step) per anchor size; other sizes sit at the cell centre.
DENSIFY = {32: (0.0, 0.25, 0.5, 0.75), 64: (0.0, 0.5)}


def valid_mask(valid_hw, x, stride: int):
    """(B, h, w, 1) mask of the cells an exact-size run has at this stride: ceil(H/stride)
    rows and ceil(W/stride) columns (a 3x3/s2/p1 conv maps n to ceil(n/2))."""
    if valid_hw is None:
        return None
    rows = -(-valid_hw[:, 0] // stride)
    cols = -(-valid_hw[:, 1] // stride)
    r = jnp.arange(x.shape[1])[None, :] < rows[:, None]
    c = jnp.arange(x.shape[2])[None, :] < cols[:, None]
    return (r[:, :, None] & c[:, None, :])[..., None].astype(x.dtype)


class BasicConv2d(nn.Module):
    """conv (no bias) -> BN(eps 1e-5) -> ReLU. Given valid_hw, the output is zeroed outside
    the valid region at its stride, so the next padded conv meets zeros there as it would
    at the true image border."""
    features: int
    kernel: int
    stride: int = 1
    padding: int = 0

    @nn.compact
    def __call__(self, x, valid_hw=None, out_stride: int = 1):
        x = conv(self.features, self.kernel, self.stride, self.padding, name="conv")(x)
        x = nn.relu(BatchNorm(name="bn")(x, train=False))
        return x if valid_hw is None else x * valid_mask(valid_hw, x, out_stride)


class Inception(nn.Module):
    """128 -> 4 x 32 channels: 1x1 | avg-pool + 1x1 | 1x1 + 3x3 | 1x1 + 3x3 + 3x3 (stride 32)."""

    @nn.compact
    def __call__(self, x, valid_hw=None):
        def block(features, kernel, name):
            layer = BasicConv2d(features, kernel, padding=kernel // 2, name=name)
            return lambda y: layer(y, valid_hw, 32)

        b1 = block(32, 1, "branch1x1")(x)
        # PyTorch's avg_pool2d counts the zero padding (count_include_pad=True): borders / 9.
        b2 = block(32, 1, "branch1x1_2")(nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)),
                                                     count_include_pad=True))
        b3 = block(32, 3, "branch3x3")(block(24, 1, "branch3x3_reduce")(x))
        b4 = block(24, 1, "branch3x3_reduce_2")(x)
        b4 = block(32, 3, "branch3x3_3")(block(32, 3, "branch3x3_2")(b4))
        return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class FaceBoxesV2(nn.Module):
    """FaceBoxesV2 (spec 14), NHWC. Input: BGR minus MEAN_BGR, float, (B, H, W, 3).
    Returns loc (B, P, 4) and softmax conf (B, P, 2) in the original's anchor order.

    valid_hw (B, 2) int, optional: the true image size inside a zero-padded input; features
    outside it are zeroed after every layer (see the module docstring)."""

    @nn.compact
    def __call__(self, x, valid_hw=None):
        if valid_hw is not None:
            x = x * valid_mask(valid_hw, x, 1)
        # 3x3 s2 p1 maps n to ceil(n/2): five give the priors' ceil(H/32) grid.
        for i, c in enumerate((8, 16, 32, 64, 128), start=1):
            x = BasicConv2d(c, 3, 2, 1, name=f"conv{i}")(x, valid_hw, 2 ** i)
        for i in (1, 2, 3):
            x = Inception(name=f"inception{i}")(x, valid_hw)
        sources = [x]
        x = BasicConv2d(128, 1, name="conv6_1")(x, valid_hw, 32)
        x = BasicConv2d(256, 3, 2, 1, name="conv6_2")(x, valid_hw, 64)
        sources.append(x)
        x = BasicConv2d(128, 1, name="conv7_1")(x, valid_hw, 64)
        x = BasicConv2d(256, 3, 2, 1, name="conv7_2")(x, valid_hw, 128)
        sources.append(x)

        b = x.shape[0]
        locs, confs = [], []
        for i, (src, sizes) in enumerate(zip(sources, MIN_SIZES)):
            n = sum(len(DENSIFY.get(s, (0.5,))) ** 2 for s in sizes)  # 21, 1, 1 anchors per cell
            # NHWC flattening = PyTorch's permute(0, 2, 3, 1).view(B, -1): cell-major, then anchor.
            locs.append(conv(4 * n, 3, padding=1, bias=True, name=f"loc.{i}")(src).reshape(b, -1, 4))
            confs.append(conv(2 * n, 3, padding=1, bias=True, name=f"conf.{i}")(src).reshape(b, -1, 2))
        return jnp.concatenate(locs, 1), jax.nn.softmax(jnp.concatenate(confs, 1), axis=-1)
