"""Image normalisation (spec 5): uint8 RGB -> /255 -> ImageNet mean/std, on device."""
import jax.numpy as jnp
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalize_images(images):
    """uint8 (or 0..255 float) RGB NHWC -> float32 normalised as torchvision ToTensor +
    Normalize do it ((x / 255 - mean) / std, in that order, for identical rounding)."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (B, H, W, 3) RGB, got shape {tuple(images.shape)}")
    x = jnp.asarray(images).astype(jnp.float32) / 255.0
    return (x - IMAGENET_MEAN) / IMAGENET_STD
