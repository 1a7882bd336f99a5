"""The experiment configs: one file per experiment, each pointing at its packaged copy in
pipnet_jax/configs/ (so `--config configs/wflw.py` and `--config wflw` are the same)."""
