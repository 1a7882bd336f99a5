"""Training throughput: the jitted, sharded train step on in-memory batches, against the
original's PyTorch step.

    python -m pipnet_jax.bench.train [--batch_size=16] [--image_size=256] [--steps=5]

One table. The first two rows are timed interleaved in one process (a JAX step, a torch
step, ...): the JAX step on one device (targets made on the device inside the step, forward
in train mode, loss, backward, Adam) and the original's PyTorch eager step (forward, the
original loss on targets made on the host beforehand, as its data loader makes them in
workers, backward, Adam), with their ratio. Then the JAX step on 2 and 8 forced host devices
(a subprocess per row, so each starts JAX afresh; on a 2-core CPU they share the same cores)
and, on a GPU, the accelerator in float32 and bfloat16."""
import argparse
import json
import statistics

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

from pipnet_jax import parallel
from pipnet_jax.bench.reference_torch import PIPNetTorch, reference_loss, reference_targets
from pipnet_jax.bench.timing import Column, format_table as markdown_table, median_ms, run_child, time_calls
from pipnet_jax.images import normalize_images
from pipnet_jax.models import PIPNet
from pipnet_jax.train import create_train_state, make_train_step, shard_train_step

TABLE = [Column("step", lambda r: r.get("step", "jax")), Column("device", lambda r: r["device_kind"][:22]),
         Column("devices", "devices"), Column("dtype", "dtype"), Column("batch", "batch"),
         Column("step ms", "step_ms", ".1f"), Column("images/s", "images_per_s", ".1f"),
         Column("vs torch eager", lambda r: r.get("vs_torch"), ".2f")]


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


def torch_step(batch_size: int, image_size: int, backbone: str, images, landmarks, neighbors):
    """The original's train step in PyTorch eager: forward (train mode), compute_loss_pip on
    targets made beforehand on the host, backward, Adam (lr 1e-4)."""
    net = PIPNetTorch(landmarks.shape[1], backbone)
    net.train()
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    x = torch.from_numpy(np.asarray(normalize_images(images, image_size)).transpose(0, 3, 1, 2).copy())
    cells = image_size // 32
    per = [reference_targets(lm.astype(np.float64), neighbors, cells, cells) for lm in landmarks]
    targets = tuple(torch.from_numpy(np.stack([t[k] for t in per]).astype(np.float32)) for k in range(5))

    def step():
        opt.zero_grad()
        loss, _ = reference_loss(net(x), targets)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def measure_interleaved(batch_size: int, image_size: int, steps: int, backbone: str) -> list:
    """JAX (this process's first device) and PyTorch eager, alternating, same batch."""
    n = 98
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (batch_size, image_size, image_size, 3)).astype(np.uint8)
    landmarks = rng.uniform(0, 1, (batch_size, n, 2)).astype(np.float32)
    neighbors = np.stack([np.roll(np.arange(n), -k)[1:11] for k in range(n)])
    mesh = parallel.make_mesh(jax.devices()[:1])
    model, tx = PIPNet(n, backbone), optax.adam(1e-4)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, image_size, image_size, 3)))
    carry = {"state": jax.device_put(create_train_state(variables, tx), parallel.replicated(mesh))}
    jax_fn = shard_train_step(make_train_step(model, tx, neighbors, input_size=image_size), mesh)
    batch = parallel.global_batch({"image": images, "landmarks": landmarks}, mesh)

    def jax_step():
        carry["state"], metrics = jax_fn(carry["state"], batch)
        return metrics

    steps_of = {"jax": jax_step, "torch eager": torch_step(batch_size, image_size, backbone, images,
                                                           landmarks, neighbors)}
    times = {name: time_calls(fn, warmup=2, repeats=0) for name, fn in steps_of.items()}  # compile
    for _ in range(steps):
        for name, fn in steps_of.items():
            times[name] += time_calls(fn, warmup=0, repeats=1)
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    return [{"step": name, "device_kind": jax.devices()[0].device_kind if name == "jax" else
             f"cpu, torch {torch.__version__.split('+')[0]}",
             "devices": 1, "dtype": "float32", "batch": batch_size, "step_ms": ms[name],
             "images_per_s": batch_size / ms[name] * 1000, "vs_torch": ms["torch eager"] / ms[name]}
            for name in steps_of]


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
    rows = measure_interleaved(args.batch_size, args.image_size, args.steps, args.backbone)
    torch_ms = rows[1]["step_ms"]
    for devices in (2, 8):
        row = run_row(devices, "float32", args)
        rows.append({**row, "vs_torch": torch_ms / row["step_ms"]})
    if jax.devices()[0].platform == "gpu":  # the accelerator itself, fp32 and bf16
        rows += [run_row(None, "float32", args), run_row(None, "bfloat16", args)]
    print(f"PIPNet {args.backbone} train step (targets, forward, loss, backward, Adam), "
          f"{args.image_size}x{args.image_size}, in-memory batches; the first two rows interleaved, "
          f"{args.steps} steps each (median)")
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
