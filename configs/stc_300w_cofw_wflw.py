"""STC as the original's data_300W_COFW_WFLW/..._wcc: labeled 300W (68 points), unlabeled
COFW train + WFLW train crops (an image folder of 256x256 crops, e.g. written by
`python -m pipnet_jax.data.builders` from those sets), 6 x 60 epochs.

--config.data.manual_dir=/data/300W --config.stc.corpus.images=/data/cofw_wflw_crops"""
from configs.common import base_config


def get_config(arg=None):
    c = base_config(arg)
    c.data.dataset = c.data.landmarks = "300w"
    c.data.eval_splits = ("full", "common", "challenge")
    return c
