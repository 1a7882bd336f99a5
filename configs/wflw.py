"""WFLW, 98 points: pip_32_16_60_r18_l2_l1_10_1_nb10 (configs/wflw.py:r101 for ResNet-101).

The config itself ships with the package: pipnet_jax/configs/wflw.py (also `--config wflw`)."""
import importlib

get_config = importlib.import_module("pipnet_jax.configs.wflw").get_config
