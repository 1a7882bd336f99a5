"""Training throughput: the jitted, sharded train step on in-memory batches.

    python -m pipnet_jax.bench.train [--batch_size=16] [--image_size=256] [--steps=5]

One table: 1 device and 8 devices (CPU devices are forced with XLA_FLAGS in a subprocess per
row, so each row starts JAX afresh), float32 and, on a GPU, bfloat16 too. Rows of one run
are comparable; on a 2-core CPU the 8 "devices" share the same 2 cores."""
import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pipnet_jax import parallel
from pipnet_jax.bench.timing import Column, format_table as markdown_table, median_ms, run_child
from pipnet_jax.models import PIPNet
from pipnet_jax.train import create_train_state, make_train_step, shard_train_step

TABLE = [Column("device", lambda r: r["device_kind"][:22]), Column("devices", "devices"),
         Column("dtype", "dtype"), Column("batch", "batch"), Column("step ms", "step_ms", ".1f"),
         Column("images/s", "images_per_s", ".1f")]


def measure(batch_size: int, image_size: int, steps: int, dtype: str, backbone: str) -> dict:
    """Runs in a child process: median step time of the train step over all visible devices."""
    mesh = parallel.make_mesh()
    n = 98
    model = PIPNet(n, backbone, dtype={"float32": None, "bfloat16": jnp.bfloat16}[dtype])
    tx = optax.adam(1e-4)
    neighbors = np.stack([np.roll(np.arange(n), -k)[1:11] for k in range(n)])
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, image_size, image_size, 3)))
    state = jax.device_put(create_train_state(variables, tx), parallel.replicated(mesh))
    step = shard_train_step(make_train_step(model, tx, neighbors, input_size=image_size), mesh)
    rng = np.random.RandomState(0)
    batch = parallel.global_batch({
        "image": rng.randint(0, 256, (batch_size, image_size, image_size, 3)).astype(np.uint8),
        "landmarks": rng.uniform(0, 1, (batch_size, n, 2)).astype(np.float32)}, mesh)
    carry = {"state": state}

    def one_step():  # the state is donated: each step consumes the previous one's
        carry["state"], metrics = step(carry["state"], batch)
        return metrics

    ms = median_ms(one_step, warmup=2, repeats=steps)  # warm-up: compile
    return {"platform": jax.devices()[0].platform, "device_kind": jax.devices()[0].device_kind,
            "devices": mesh.devices.size, "dtype": dtype, "batch": batch_size,
            "step_ms": ms, "images_per_s": batch_size / ms * 1000}


def run_row(devices: int | None, dtype: str, args) -> dict:
    return run_child("pipnet_jax.bench.train", [
        "--child", f"--dtype={dtype}", f"--batch_size={args.batch_size}",
        f"--image_size={args.image_size}", f"--steps={args.steps}", f"--backbone={args.backbone}"],
        devices)


def format_table(rows) -> str:
    return markdown_table(rows, TABLE)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipnet_jax.bench.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--image_size", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.batch_size, args.image_size, args.steps, args.dtype, args.backbone)))
        return []
    rows = [run_row(1, "float32", args), run_row(8, "float32", args)]
    if jax.devices()[0].platform == "gpu":  # the accelerator itself, fp32 and bf16
        rows += [run_row(None, "float32", args), run_row(None, "bfloat16", args)]
    print(f"PIPNet {args.backbone} train step (targets, forward, loss, backward, Adam), "
          f"{args.image_size}x{args.image_size}, in-memory batches")
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
