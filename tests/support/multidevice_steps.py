"""Runs a few sharded train steps on a fixed global batch and writes losses and parameters.

Run as a script (by tests/test_parallel.py) so that XLA_FLAGS / multi-process settings are
fixed before JAX starts:
    python tests/support/multidevice_steps.py OUT.npz [--single]
With --single the same steps run on a 1-device mesh. Under launch/local.py every process
feeds its own rows of the global batch, as hosts do in a real multi-host run.

Float64 (JAX_ENABLE_X64): Adam's first steps are about lr * sign(g), so a gradient that is
zero up to float32 rounding (which depends on how a reduction is split over devices) could
move a weight by 2 * lr either way; in float64 the signs are settled and the comparison is
about the sharding, not about rounding."""
import os
import sys

os.environ["JAX_ENABLE_X64"] = "1"

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from pipnet_jax import parallel  # noqa: E402
from pipnet_jax.models import PIPNet  # noqa: E402
from pipnet_jax.train import create_train_state, make_train_step  # noqa: E402

GLOBAL_BATCH, SIZE, N, STEPS = 8, 64, 19, 3


def main(out: str, single: bool) -> None:
    parallel.initialize_distributed()
    mesh = parallel.make_mesh(jax.devices()[:1] if single else None)
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (STEPS, GLOBAL_BATCH, SIZE, SIZE, 3)).astype(np.uint8)
    landmarks = rng.uniform(0.05, 0.95, (STEPS, GLOBAL_BATCH, N, 2))
    neighbors = np.stack([np.roll(np.arange(N), -k)[1:5] for k in range(N)])

    model = PIPNet(N, "resnet18", num_neighbors=4)
    tx = optax.adam(1e-4)
    variables = model.init(jax.random.PRNGKey(0), np.zeros((1, SIZE, SIZE, 3), np.float32))
    variables = jax.tree_util.tree_map(
        lambda a: a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a, variables)
    state = create_train_state(variables, tx)
    state = jax.device_put(state, parallel.replicated(mesh))
    data = parallel.batch_sharding(mesh)
    step = jax.jit(make_train_step(model, tx, neighbors, input_size=SIZE),
                   in_shardings=(parallel.replicated(mesh), data),
                   out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)))
    # this process's rows of the global batch
    per_host = GLOBAL_BATCH // jax.process_count()
    rows = slice(jax.process_index() * per_host, (jax.process_index() + 1) * per_host)
    losses = []
    for s in range(STEPS):
        batch = parallel.global_batch({"image": images[s, rows], "landmarks": landmarks[s, rows]}, mesh)
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    flat = {jax.tree_util.keystr(p): np.asarray(v) for p, v in
            jax.tree_util.tree_flatten_with_path(jax.device_get({"params": state.params,
                                                                 "batch_stats": state.batch_stats}))[0]}
    if jax.process_index() == 0:
        np.savez(out, losses=np.array(losses), num_devices=mesh.devices.size,
                 num_processes=jax.process_count(), **flat)


if __name__ == "__main__":
    main(sys.argv[1], "--single" in sys.argv[2:])
