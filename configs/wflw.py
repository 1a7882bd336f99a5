"""WFLW, 98 points: pip_32_16_60_r18_l2_l1_10_1_nb10 (configs/wflw.py:r101 for ResNet-101)."""
from configs.common import base_config


def get_config(arg=None):
    c = base_config(arg)
    c.data.dataset = "wflw"
    return c
