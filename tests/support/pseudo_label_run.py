"""Pseudo-labels an image folder with a fixed random-weights PIPNet (run as a script by
tests/test_stc.py under different device / process layouts):
    python tests/support/pseudo_label_run.py CORPUS_DIR OUT_DIR
Float64 (JAX_ENABLE_X64): random weights give near-tied cell scores, and float32 rounding
that depends on the device layout could flip an argmax; in float64 the labels are a function
of the layout-independent math only."""
import os
import sys

os.environ["JAX_ENABLE_X64"] = "1"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from pipnet_jax import parallel  # noqa: E402
from pipnet_jax.data.corpus import open_corpus  # noqa: E402
from pipnet_jax.models import PIPNet  # noqa: E402
from pipnet_jax.inference import make_sharded_predict  # noqa: E402
from pipnet_jax.stc import pseudo_label  # noqa: E402

N, SIZE = 19, 64


def main(corpus_dir, out_dir):
    parallel.initialize_distributed()
    model = PIPNet(N, "resnet18", num_neighbors=4)
    variables = model.init(jax.random.PRNGKey(0), np.zeros((1, SIZE, SIZE, 3), np.float32))
    variables = jax.tree_util.tree_map(
        lambda a: a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a, variables)
    neighbors = np.stack([np.roll(np.arange(N), -k)[1:5] for k in range(N)])
    predict = make_sharded_predict(model, variables, neighbors, SIZE)
    pseudo_label(predict, open_corpus(corpus_dir), out_dir, "cls2", "random-teacher-0",
                 shard_size=2, batch_size=8)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
