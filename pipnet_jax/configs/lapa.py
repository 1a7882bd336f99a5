"""LaPa, 106 points ({train,val,test}/images + landmarks)."""
from pipnet_jax.configs.common import base_config


def get_config(arg=None):
    c = base_config(arg)
    c.data.dataset = c.data.landmarks = "lapa"
    return c
