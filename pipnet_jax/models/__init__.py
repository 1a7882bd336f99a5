"""Flax modules: ResNet / MobileNet backbones, the PIPNet head, and the FaceBoxesV2 detector."""
from pipnet_jax.models.faceboxes import FaceBoxesV2
from pipnet_jax.models.pipnet import BACKBONES, FEATURE_CHANNELS, PIPNet, PIPOutput

__all__ = ["BACKBONES", "FEATURE_CHANNELS", "FaceBoxesV2", "PIPNet", "PIPOutput"]
