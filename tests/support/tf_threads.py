"""Imported first by the test modules that use TensorFlow: quiet logs, and at most two
threads (two shared cores). Thread limits must be set before TF's first op."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

try:
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
except RuntimeError:  # another test module already started TensorFlow: limits are set
    pass
