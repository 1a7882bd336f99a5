"""COFW, 29 points (COFW_train_color.mat / COFW_test_color.mat): pip_32_16_60_r18_l2_l1_10_1_nb10."""
from pipnet_jax.configs.common import base_config


def get_config(arg=None):
    c = base_config(arg)
    c.data.dataset = c.data.landmarks = "cofw"
    return c
