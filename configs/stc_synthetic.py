"""Self-training with curriculum across a synthetic domain shift, sized for a CPU.

The config itself ships with the package: pipnet_jax/configs/stc_synthetic.py (also `--config stc_synthetic`)."""
import importlib

get_config = importlib.import_module("pipnet_jax.configs.stc_synthetic").get_config
