"""The original's recipe (spec 2.2, 8, 9) as a ConfigDict; dataset configs override fields.

The config itself ships with the package: pipnet_jax/configs/common.py."""
from pipnet_jax.configs.common import BACKBONE_ALIASES, base_config, stc_300w_config, stc_config  # noqa: F401
