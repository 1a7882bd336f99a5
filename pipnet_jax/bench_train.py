"""Training throughput: the jitted, sharded train step on in-memory batches.

    python -m pipnet_jax.bench_train [--batch_size=16] [--image_size=256] [--steps=5]

One table: 1 device and 8 devices (CPU devices are forced with XLA_FLAGS in a subprocess per
row, so each row starts JAX afresh), float32 and, on a GPU, bfloat16 too. Rows of one run
are comparable; on a 2-core CPU the 8 "devices" share the same 2 cores."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def measure(batch_size: int, image_size: int, steps: int, dtype: str, backbone: str) -> dict:
    """Runs in a child process: median step time of the train step over all visible devices."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from pipnet_jax import parallel
    from pipnet_jax.models import PIPNet
    from pipnet_jax.train import create_train_state, make_train_step

    mesh = parallel.make_mesh()
    n = 98
    model = PIPNet(n, backbone, dtype={"float32": None, "bfloat16": jnp.bfloat16}[dtype])
    tx = optax.adam(1e-4)
    neighbors = np.stack([np.roll(np.arange(n), -k)[1:11] for k in range(n)])
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, image_size, image_size, 3)))
    state = jax.device_put(create_train_state(variables, tx), parallel.replicated(mesh))
    data = parallel.batch_sharding(mesh)
    step = jax.jit(make_train_step(model, tx, neighbors, input_size=image_size),
                   in_shardings=(parallel.replicated(mesh), data, data),
                   out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)),
                   donate_argnums=0)
    rng = np.random.RandomState(0)
    batch = parallel.global_batch({
        "image": rng.randint(0, 256, (batch_size, image_size, image_size, 3)).astype(np.uint8),
        "landmarks": rng.uniform(0, 1, (batch_size, n, 2)).astype(np.float32)}, mesh)
    for _ in range(2):  # compile + warm up
        state, metrics = step(state, batch["image"], batch["landmarks"])
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        state, metrics = step(state, batch["image"], batch["landmarks"])
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t)
    ms = 1000 * statistics.median(times)
    return {"platform": jax.devices()[0].platform, "device_kind": jax.devices()[0].device_kind,
            "devices": mesh.devices.size, "dtype": dtype, "batch": batch_size,
            "step_ms": ms, "images_per_s": batch_size / ms * 1000}


def run_child(module: str, flags: list, devices: int | None) -> dict:
    """`python -m module flags` in a fresh process (JAX starts anew): on `devices` forced host
    (CPU) devices, or on the default accelerator when None; returns its last stdout line's JSON."""
    env = dict(os.environ)
    if devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run([sys.executable, "-m", module, *flags], env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"benchmark row ({devices or 'accelerator'} devices) failed:\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_row(devices: int | None, dtype: str, args) -> dict:
    return run_child("pipnet_jax.bench_train", [
        "--child", f"--dtype={dtype}", f"--batch_size={args.batch_size}",
        f"--image_size={args.image_size}", f"--steps={args.steps}", f"--backbone={args.backbone}"],
        devices)


def format_table(rows) -> str:
    head = f"{'device':<22} {'devices':>7} {'dtype':>9} {'batch':>6} {'step ms':>9} {'images/s':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['device_kind'][:22]:<22} {r['devices']:>7} {r['dtype']:>9} {r['batch']:>6} "
                     f"{r['step_ms']:>9.1f} {r['images_per_s']:>9.1f}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    import jax
    rows = [run_row(1, "float32", args), run_row(8, "float32", args)]
    if jax.devices()[0].platform == "gpu":  # the accelerator itself, fp32 and bf16
        rows += [run_row(None, "float32", args), run_row(None, "bfloat16", args)]
    print(f"PIPNet {args.backbone} train step (targets, forward, loss, backward, Adam), "
          f"{args.image_size}x{args.image_size}, in-memory batches")
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
