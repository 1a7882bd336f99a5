"""AFLW-Full, 19 points (AFLWinfo_release.mat; NME normalised by 1 = box size, spec 15)."""
from pipnet_jax.configs.common import base_config


def get_config(arg=None):
    c = base_config(arg)
    c.data.dataset = c.data.landmarks = "aflw"
    return c
