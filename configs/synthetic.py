"""The embedded default: procedural faces in WFLW format (98 points), generated on first use."""
from configs.common import base_config


def get_config(arg=None):
    c = base_config(arg)
    c.data.dataset = "wflw"
    c.data.synthetic = True
    return c
