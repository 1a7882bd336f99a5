"""The embedded default: procedural faces in WFLW format (98 points), generated on first use.

Sized for a few minutes on a 2-core CPU: 128x128 input (the 256 crops are resized on the
device), batch 16, a short schedule. For the original's recipe on it:
--config.model.input_size=256 --config.train.max_steps=0 --config.train.num_epochs=60."""
from pipnet_jax.configs.common import base_config


def get_config(arg=None):
    c = base_config(arg)
    c.data.dataset = "synthetic"
    c.data.landmarks = "wflw"
    c.data.synthetic_train = 4000
    c.data.synthetic_test = 200
    c.model.input_size = 128
    c.train.num_epochs = 10
    c.train.decay_epochs = (6, 8)
    c.train.max_steps = 300
    c.train.log_every_steps = 25
    c.train.checkpoint_every_steps = 100
    c.train.learning_rate = 1e-3
    return c
