"""Flax modules: ResNet / MobileNet backbones and the PIPNet head."""
from pipnet_jax.models.pipnet import BACKBONES, FEATURE_CHANNELS, PIPNet, PIPOutput

__all__ = ["BACKBONES", "FEATURE_CHANNELS", "PIPNet", "PIPOutput"]
