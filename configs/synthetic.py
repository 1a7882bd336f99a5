"""The embedded default: procedural faces in WFLW format (98 points), generated on first use.

The config itself ships with the package: pipnet_jax/configs/synthetic.py (also `--config synthetic`)."""
import importlib

get_config = importlib.import_module("pipnet_jax.configs.synthetic").get_config
