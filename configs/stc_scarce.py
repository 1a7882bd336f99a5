"""STC in the paper's regime (scarce labels, a corpus ten times larger), sized for a CPU.

The config itself ships with the package: pipnet_jax/configs/stc_scarce.py (also `--config stc_scarce`)."""
import importlib

get_config = importlib.import_module("pipnet_jax.configs.stc_scarce").get_config
