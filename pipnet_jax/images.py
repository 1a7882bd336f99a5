"""Image normalisation (spec 5): uint8 RGB -> /255 -> ImageNet mean/std, on device."""
import jax
import jax.numpy as jnp
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalize_images(images, input_size: int | None = None):
    """uint8 (or 0..255 float) RGB NHWC -> float32 normalised as torchvision ToTensor +
    Normalize do it ((x / 255 - mean) / std, in that order). With input_size, crops of
    another size are resized bilinearly (without antialiasing, like cv2.INTER_LINEAR; the
    original always feeds 256x256)."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (B, H, W, 3) RGB, got shape {tuple(images.shape)}")
    x = jnp.asarray(images).astype(jnp.float32) / 255.0
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    if input_size and x.shape[1:3] != (input_size, input_size):
        x = jax.image.resize(x, (x.shape[0], input_size, input_size, 3), "linear", antialias=False)
    return x
