"""Inference benchmark: JAX (jit) versus the PyTorch reference, forward + decode.

Both sides run the same network: a randomly initialised PIPNetTorch (random BatchNorm
statistics too) converted to Flax variables. Each timed call takes a batch of images and
returns decoded landmarks (spec section 12, merged with the neighbour votes).

    python -m pipnet_jax.bench --batch_sizes=1,32 --repeats=5

The `speedup` column is torch_eager_ms / row_ms: above 1 means faster than torch eager.
"""
import argparse
import os
import statistics
import sys
import time

import jax
import numpy as np

from pipnet_jax.decode import decoder
from pipnet_jax.meanface import neighbor_indices
from pipnet_jax.models import PIPNet
from pipnet_jax.torch_port import from_torch_state_dict

BACKENDS = ("jax_jit", "torch_eager", "torch_channels_last")


def median_ms(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def device_info() -> str:
    import torch

    dev = jax.devices()[0]
    return (f"jax {jax.__version__}: {dev.platform} ({dev.device_kind}); "
            f"torch {torch.__version__}: {_torch_device()}, {torch.get_num_threads()} threads; "
            f"{os.cpu_count()} CPUs")


def _torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run_benchmark(backbone: str = "resnet18", image_size: int = 256, batch_sizes=(1, 32),
                  repeats=None, warmup: int = 2, num_landmarks: int = 98,
                  num_neighbors: int = 10, net_stride: int = 32, seed: int = 0,
                  log=print) -> list[dict]:
    """Times forward + decode per backend and batch size -> one row dict per (backend, batch):
    backend, batch, median_ms, images_per_s, speedup (torch_eager ms / this row's ms).

    repeats=None times 10 calls at batch 1 and 5 at larger batches. Before timing, checks
    that JAX and torch decode the same landmarks (max abs diff <= 1e-4) and logs the diff."""
    import torch
    from pipnet_jax.reference_torch import PIPNetTorch, randomize_batchnorm, reference_decoder

    device = _torch_device()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    meanface = np.random.RandomState(0).rand(num_landmarks, 2)
    neighbors = neighbor_indices(meanface, num_neighbors)

    torch.manual_seed(seed)
    torch_model = PIPNetTorch(num_landmarks, backbone, num_neighbors, net_stride).eval()
    randomize_batchnorm(torch_model, torch.Generator().manual_seed(seed))
    model = PIPNet(num_landmarks, backbone, num_neighbors, net_stride)
    variables = from_torch_state_dict(torch_model.state_dict(), model)
    torch_model = torch_model.to(device)
    torch_model_cl = PIPNetTorch(num_landmarks, backbone, num_neighbors, net_stride).eval()
    torch_model_cl.load_state_dict(torch_model.state_dict())
    torch_model_cl = torch_model_cl.to(device, memory_format=torch.channels_last)

    jax_decode = decoder(neighbors, net_stride, image_size)
    jax_fn = jax.jit(lambda v, images: jax_decode(model.apply(v, images, train=False)))
    torch_decode = reference_decoder(neighbors, net_stride, image_size)

    def torch_fn(net, images):
        with torch.no_grad():
            out = torch_decode(net(images))
        sync()
        return out

    rows = []
    for batch in batch_sizes:
        n_repeats = repeats or (10 if batch == 1 else 5)
        images = np.random.RandomState(seed + batch).randn(batch, 3, image_size, image_size)
        images = images.astype(np.float32)
        images_torch = torch.from_numpy(images).to(device)
        images_cl = images_torch.contiguous(memory_format=torch.channels_last)
        images_jax = jax.device_put(images.transpose(0, 2, 3, 1))

        jax_lms = np.asarray(jax_fn(variables, images_jax)[0])
        for name, net, x in [("torch_eager", torch_model, images_torch),
                             ("torch_channels_last", torch_model_cl, images_cl)]:
            diff = float(np.abs(torch_fn(net, x)[0].cpu().numpy() - jax_lms).max())
            log(f"sanity batch {batch}: max |jax - {name}| landmarks = {diff:.2e}")
            assert diff <= 1e-4, f"JAX and {name} landmarks differ by {diff} at batch {batch}"

        timings = {
            "jax_jit": median_ms(lambda: jax.block_until_ready(jax_fn(variables, images_jax)),
                                 warmup, n_repeats),
            "torch_eager": median_ms(lambda: torch_fn(torch_model, images_torch),
                                     warmup, n_repeats),
            "torch_channels_last": median_ms(lambda: torch_fn(torch_model_cl, images_cl),
                                             warmup, n_repeats),
        }
        for backend in BACKENDS:
            ms = timings[backend]
            rows.append(dict(backend=backend, batch=batch, median_ms=ms,
                             images_per_s=batch * 1e3 / ms, repeats=n_repeats,
                             speedup=timings["torch_eager"] / ms))
    return rows


def format_table(rows) -> str:
    header = f"{'backend':<20} | {'batch':>5} | {'median ms':>10} | {'images/s':>9} | " \
             f"{'speedup vs torch eager':>22}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['backend']:<20} | {r['batch']:>5} | {r['median_ms']:>10.2f} | "
                     f"{r['images_per_s']:>9.1f} | {r['speedup']:>21.2f}x")
    lines.append("speedup = torch_eager median ms / row median ms (>1: faster than torch eager)")
    return "\n".join(lines)


def parse_args(args):
    p = argparse.ArgumentParser(prog="python -m pipnet_jax.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--image_size", type=int, default=256)
    p.add_argument("--batch_sizes", default="1,32", help="comma-separated, e.g. 1,32")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per row (default: 10 at batch 1, 5 otherwise)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per row (JAX compiles here)")
    p.add_argument("--num_landmarks", type=int, default=98)
    p.add_argument("--num_neighbors", type=int, default=10)
    p.add_argument("--net_stride", type=int, default=32)
    return p.parse_args(args)


def main(argv):
    """argv as absl's app.run passes it: argv[0] is the program name."""
    a = parse_args(list(argv[1:]))
    print(device_info())
    print(f"PIPNet {a.backbone}, {a.image_size}x{a.image_size}, {a.num_landmarks} landmarks, "
          f"{a.num_neighbors} neighbours, net_stride {a.net_stride}; forward + decode")
    rows = run_benchmark(a.backbone, a.image_size, [int(b) for b in a.batch_sizes.split(",")],
                         a.repeats, a.warmup, a.num_landmarks, a.num_neighbors, a.net_stride)
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main(sys.argv)
