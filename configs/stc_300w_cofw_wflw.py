"""STC as the original's data_300W_COFW_WFLW/..._wcc: labeled 300W (68 points, the GSSL 1.3

The config itself ships with the package: pipnet_jax/configs/stc_300w_cofw_wflw.py (also `--config stc_300w_cofw_wflw`)."""
import importlib

get_config = importlib.import_module("pipnet_jax.configs.stc_300w_cofw_wflw").get_config
