"""COFW, 29 points (COFW_train_color.mat / COFW_test_color.mat): pip_32_16_60_r18_l2_l1_10_1_nb10.

The config itself ships with the package: pipnet_jax/configs/cofw.py (also `--config cofw`)."""
import importlib

get_config = importlib.import_module("pipnet_jax.configs.cofw").get_config
