"""WFLW, 98 points: pip_32_16_60_r18_l2_l1_10_1_nb10 (configs/wflw.py:r101 for ResNet-101).

--config.data.manual_dir=/path/to/WFLW (WFLW_images/ + WFLW_annotations/)."""
from pipnet_jax.configs.common import base_config


def get_config(arg=None):
    c = base_config(arg)
    c.data.dataset = c.data.landmarks = "wflw"
    c.evals.main.splits = ("test", "test_pose", "test_expression", "test_illumination",
                           "test_makeup", "test_occlusion", "test_blur")
    return c
