"""300W, 68 points (afw/helen/lfpw/ibug tree with .pts): pip_32_16_60_r18_l2_l1_10_1_nb10."""
from pipnet_jax.configs.common import base_config


def get_config(arg=None):
    c = base_config(arg)
    c.data.dataset = c.data.landmarks = "300w"
    c.evals.main.splits = ("full", "common", "challenge")
    return c
