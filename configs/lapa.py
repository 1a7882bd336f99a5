"""LaPa, 106 points ({train,val,test}/images + landmarks).

The config itself ships with the package: pipnet_jax/configs/lapa.py (also `--config lapa`)."""
import importlib

get_config = importlib.import_module("pipnet_jax.configs.lapa").get_config
