"""300W, 68 points (afw/helen/lfpw/ibug tree with .pts): pip_32_16_60_r18_l2_l1_10_1_nb10.

The config itself ships with the package: pipnet_jax/configs/300w.py (also `--config 300w`)."""
import importlib

get_config = importlib.import_module("pipnet_jax.configs.300w").get_config
