"""AFLW-Full, 19 points (AFLWinfo_release.mat; NME normalised by 1 = box size, spec 15).

The config itself ships with the package: pipnet_jax/configs/aflw.py (also `--config aflw`)."""
import importlib

get_config = importlib.import_module("pipnet_jax.configs.aflw").get_config
