"""Self-training with curriculum across a synthetic domain shift, sized for a CPU.

Labeled: synthetic faces of style 'a'. Unlabeled corpus: the train faces of style 'b'
(stronger poses, side light, other textures, more occluders and blur; their labels unused).
Test: the style 'b' test faces. Teacher + the original's 5 rounds (cls3, cls2, std x3)."""
from configs.synthetic import get_config as synthetic_config


def get_config(arg=None):
    c = synthetic_config(arg)
    c.data.synthetic_train = 1000
    c.data.synthetic_test = 100
    c.train.max_steps = 200
    c.train.learning_rate = 1e-3
    c.train.checkpoint_every_steps = 200
    c.stc.target_synthetic_style = "b"
    c.stc.target_synthetic_train = 1000
    c.stc.target_synthetic_test = 200
    c.stc.shard_size = 250
    return c
