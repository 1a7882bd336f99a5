"""STC as the original's data_300W_CELEBA/pip_32_16_60_r18_l2_l1_10_1_nb10_wcc: labeled 300W

The config itself ships with the package: pipnet_jax/configs/stc_300w_celeba.py (also `--config stc_300w_celeba`)."""
import importlib

get_config = importlib.import_module("pipnet_jax.configs.stc_300w_celeba").get_config
