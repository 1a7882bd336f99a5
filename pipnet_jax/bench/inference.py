"""Inference benchmark: JAX (jit) versus the PyTorch reference, forward + decode, and the
TFLite and ONNX Runtime exports.

Both sides run the same network: a randomly initialised PIPNetTorch (random BatchNorm
statistics too) converted to Flax variables. Each timed call takes a batch of images and
returns decoded landmarks (spec section 12, merged with the neighbour votes).

    python -m pipnet_jax.bench --batch_sizes=1,32 --repeats=5
    (also python -m pipnet_jax.bench.inference, and --mode=bench of pipnet_jax.main)

The `speedup` column is torch_eager_ms / row_ms: above 1 means faster than torch eager.
"""
import argparse
import os
import sys
import tempfile

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import torch

from pipnet_jax.bench.reference_torch import PIPNetTorch, randomize_batchnorm, reference_decoder
from pipnet_jax.bench.timing import Column, format_table as markdown_table, median_ms
from pipnet_jax.data.synthetic import generate_face
from pipnet_jax.decode import decoder
from pipnet_jax.detection import make_detector
from pipnet_jax.export import export_onnx, export_tflite, load_onnx, load_tflite
from pipnet_jax.images import normalize_images
from pipnet_jax.meanface import neighbor_indices
from pipnet_jax.models import PIPNet
from pipnet_jax.torch_port import from_torch_state_dict

BACKENDS = ("jax_jit", "torch_eager", "torch_channels_last", "torch_compile", "tflite",
            "onnxruntime", "onnxruntime_basic")
# ONNX Runtime rows: graph optimisation level at session creation. The file itself is already
# simplified with the basic level (BatchNorm folded); 'all' adds the CPU layout transforms.
ONNX_ROWS = {"onnxruntime": "all", "onnxruntime_basic": "basic"}
MODE_BATCH_SIZES = (1, 32)  # what `--mode=bench` times (run_from_config)
# The original repository's demo images and FaceBoxesV2 weights, when present.
SHARED_DATA = os.environ.get("PIPNET_SHARED_DATA", os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared", "data"))


def device_info() -> str:
    dev = jax.devices()[0]
    return (f"jax {jax.__version__}: {dev.platform} ({dev.device_kind}); "
            f"torch {torch.__version__}: {_torch_device()}, {torch.get_num_threads()} threads; "
            f"{os.cpu_count()} CPUs")


def _torch_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def matmul_peak_tflops(dtype="float32") -> float:
    """Measured dense matmul rate of the JAX device (the yardstick for 'fraction of peak')."""
    n = 4096 if jax.devices()[0].platform == "gpu" else 1024
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x: x @ x)
    ms = median_ms(lambda: f(a), 2, 5)
    return 2 * n ** 3 / (ms / 1e3) / 1e12


def model_flops(fn, *args) -> float:
    """FLOPs of one call, from XLA's cost analysis (0 when unavailable)."""
    try:
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost.get("flops", 0.0))
    except Exception:  # cost analysis is best effort
        return 0.0


def run_benchmark(backbone: str = "resnet18", image_size: int = 256, batch_sizes=(1, 32),
                  repeats=None, warmup: int = 2, num_landmarks: int = 98,
                  num_neighbors: int = 10, net_stride: int = 32, seed: int = 0,
                  log=print, torch_compile: bool = True, tflite: bool = True,
                  onnx: bool = False) -> list[dict]:
    """Times forward + decode per backend, dtype and batch size -> one row dict each:
    backend, dtype, batch, median_ms, images_per_s, speedup (torch_eager ms of the same
    batch and dtype / this row's ms), and for JAX rows the fraction of matmul peak.

    repeats=None times 10 calls at batch 1 and 3 at larger batches. Before timing, checks
    that every backend decodes the same landmarks as JAX (max abs diff <= 1e-4 in float32).
    onnx: the ONNX Runtime rows (CPU only; needs requirements-onnx.txt), on by default on the
    command line."""
    device = _torch_device()
    on_gpu = jax.devices()[0].platform == "gpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    meanface = np.random.RandomState(0).rand(num_landmarks, 2)
    neighbors = neighbor_indices(meanface, num_neighbors)

    torch.manual_seed(seed)
    torch_model = PIPNetTorch(num_landmarks, backbone, num_neighbors, net_stride).eval()
    randomize_batchnorm(torch_model, torch.Generator().manual_seed(seed))
    model = PIPNet(num_landmarks, backbone, num_neighbors, net_stride)
    variables = from_torch_state_dict(torch_model.state_dict(), model)
    torch_model = torch_model.to(device)
    torch_cl = PIPNetTorch(num_landmarks, backbone, num_neighbors, net_stride).eval()
    torch_cl.load_state_dict(torch_model.state_dict())
    torch_cl = torch_cl.to(device, memory_format=torch.channels_last)
    torch_decode = reference_decoder(neighbors, net_stride, image_size)
    jax_decode = decoder(neighbors, net_stride, image_size)

    def jax_backend(dtype):
        m = model if dtype == "float32" else model.clone(dtype=jnp.bfloat16)
        fn = jax.jit(lambda v, x: jax_decode(m.apply(v, x, train=False)))
        return lambda x: jax.block_until_ready(fn(variables, x))[0], fn

    def torch_backend(net, dtype, compiled=False, channels_last=False):
        run = torch.compile(net) if compiled else net

        def call(x):
            with torch.no_grad(), torch.autocast(device, torch.bfloat16, enabled=dtype == "bfloat16"):
                out = torch_decode([o.float() for o in run(x)])
            sync()
            return out[0]
        return call

    onnx_file = _onnx_file(model, variables, neighbors, image_size) if onnx and not on_gpu else None
    dtypes = ["float32"] + (["bfloat16"] if on_gpu else [])
    peak = {d: matmul_peak_tflops(d) for d in dtypes}
    log("measured matmul peak: " + ", ".join(f"{d} {t:.2f} TFLOP/s" for d, t in peak.items()))
    rows = []
    for batch in batch_sizes:
        n_repeats = repeats or (10 if batch == 1 else 3)
        images_u8 = np.random.RandomState(seed + batch).randint(0, 256, (batch, image_size, image_size, 3)).astype(np.uint8)
        images = np.asarray(normalize_images(images_u8)).transpose(0, 3, 1, 2).copy()
        x_torch = torch.from_numpy(images).to(device)
        x_cl = x_torch.contiguous(memory_format=torch.channels_last)
        x_jax = jax.device_put(images.transpose(0, 2, 3, 1))
        for dtype in dtypes:
            candidates = [("jax_jit", lambda: jax_backend(dtype)[0], x_jax),
                          ("torch_eager", lambda: torch_backend(torch_model, dtype), x_torch),
                          ("torch_channels_last", lambda: torch_backend(torch_cl, dtype), x_cl)]
            if torch_compile:
                candidates.append(("torch_compile", lambda: torch_backend(torch_cl, dtype, compiled=True), x_cl))
            if tflite and dtype == "float32" and not on_gpu:
                candidates.append(("tflite", lambda: _tflite_backend(model, variables, neighbors, image_size, batch), images_u8))
            if onnx and dtype == "float32" and not on_gpu:
                candidates += [(name, lambda level=level: _onnx_backend(onnx_file(), level), images_u8)
                               for name, level in ONNX_ROWS.items()]
            reference = None
            timings = {}
            for name, make, x in candidates:
                try:
                    call = make()
                    out = call(x)
                    landmarks = np.asarray(out.cpu().numpy() if hasattr(out, "cpu") else out, np.float32)
                except Exception as e:  # e.g. torch.compile without a working compiler
                    log(f"{name} ({dtype}, batch {batch}) skipped: {type(e).__name__}: {str(e)[:200]}")
                    continue
                if reference is None:
                    reference = landmarks
                # Random weights leave some cell scores nearly tied: float32 rounding may flip
                # a rare argmax (a jump of one cell), so check the fraction that agrees.
                close = np.abs(landmarks - reference).max(-1) <= 1e-4
                log(f"sanity batch {batch} {dtype}: {name} vs jax: {100 * close.mean():.3f}% of "
                    f"landmarks within 1e-4 (max diff {np.abs(landmarks - reference).max():.2e})")
                if dtype == "float32":
                    assert close.mean() >= 0.995, f"JAX and {name} landmarks disagree at batch {batch}"
                timings[name] = median_ms(lambda: call(x), warmup, n_repeats)
            flops = model_flops(lambda v, xx: jax_decode(model.apply(v, xx, train=False)), variables, x_jax)
            for name, ms in timings.items():
                row = dict(backend=name, dtype=dtype, batch=batch, median_ms=ms,
                           images_per_s=batch * 1e3 / ms, repeats=n_repeats,
                           speedup=timings.get("torch_eager", float("nan")) / ms)
                if name == "jax_jit" and flops:
                    row["peak_fraction"] = flops / (ms / 1e3) / 1e12 / peak[dtype]
                rows.append(row)
    return rows


def _tflite_backend(model, variables, neighbors, image_size, batch):
    """The TFLite export (XNNPACK on CPU) of the same network, fixed batch: uint8 images in
    (normalisation and decode are inside the graph). Timed like every row, by median_ms."""
    path = os.path.join(tempfile.mkdtemp(prefix="pipnet_bench_"), "model.tflite")
    export_tflite(path, model, variables, neighbors, input_size=image_size, batch_size=batch)
    run = load_tflite(path, num_threads=os.cpu_count())
    return lambda images_u8: np.asarray(run(images_u8)[0])


def _onnx_file(model, variables, neighbors, image_size):
    """-> a function giving the path of the end-to-end ONNX export (symbolic batch: one file for
    every batch size), converted at its first call (so a missing jax2onnx skips only the rows)."""
    path = os.path.join(tempfile.mkdtemp(prefix="pipnet_bench_"), "model.onnx")

    def get():
        if not os.path.exists(path):
            export_onnx(path, model, variables, neighbors, input_size=image_size)
        return path
    return get


def _onnx_backend(path, optimization):
    """ONNX Runtime (CPU provider, all CPUs) on the export: uint8 images in, like TFLite."""
    run = load_onnx(path, num_threads=os.cpu_count(), optimization=optimization)
    return lambda images_u8: np.asarray(run(images_u8)[0])


def detector_timings(log=print, repeats: int = 5) -> list[dict]:
    """ms per image of the face detectors at the original demo's settings (full resolution),
    on the original repository's demo images when ../shared/data has them, else a generated one."""
    root = SHARED_DATA
    paths = [os.path.join(root, "pipnet_repo_assets", "images", f"{i}.jpg") for i in (1, 2, 3)]
    images = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in paths if os.path.exists(p)]
    if not images:
        images = [cv2.cvtColor(generate_face(np.random.default_rng(0), (1024, 1024))[0], cv2.COLOR_BGR2RGB)]
    weights = os.path.join(root, "pipnet_repo_assets", "FaceBoxesV2", "weights", "FaceBoxesV2.pth")
    rows = []
    for kind in ("faceboxes", "haar"):
        kwargs = {"weights_path": weights} if kind == "faceboxes" and os.path.exists(weights) \
            and not os.environ.get("PIPNET_FACEBOXES_WEIGHTS") else {}
        try:
            det = make_detector(kind, **kwargs)
        except Exception as e:  # e.g. FaceBoxesV2 weights not available offline
            log(f"detector {kind} skipped: {e}")
            continue
        for im in images:
            det.detect(im)  # compile / warm up per size
        ms = median_ms(lambda: [det.detect(im) for im in images], 0, repeats) / len(images)
        rows.append(dict(detector=kind, images=len(images), ms_per_image=ms,
                         size=f"{images[0].shape[1]}x{images[0].shape[0]}"))
    return rows


TABLE = [Column("backend", "backend"), Column("dtype", "dtype"), Column("batch", "batch"),
         Column("median ms", "median_ms", ".2f"), Column("images/s", "images_per_s", ".1f"),
         Column("vs torch eager", lambda r: f"{r['speedup']:.2f}x", align=">"),
         Column("% of matmul peak", lambda r: f"{100 * r['peak_fraction']:.1f}%"
                if "peak_fraction" in r else "", align=">")]
DETECTOR_TABLE = [Column("detector", "detector"), Column("images", "images"),
                  Column("size", "size", align=">"), Column("ms / image", "ms_per_image", ".1f")]


def format_table(rows) -> str:
    return (markdown_table(rows, TABLE) + "\n"
            "vs torch eager = torch_eager median ms / row median ms (>1: faster than torch eager)")


def format_detector_table(rows) -> str:
    return markdown_table(rows, DETECTOR_TABLE)


def parse_args(args):
    p = argparse.ArgumentParser(prog="python -m pipnet_jax.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--image_size", type=int, default=256)
    p.add_argument("--batch_sizes", default="1,32,256", help="comma-separated, e.g. 1,32,256")
    p.add_argument("--no_torch_compile", action="store_true", help="skip torch.compile rows")
    p.add_argument("--no_tflite", action="store_true", help="skip the TFLite rows")
    p.add_argument("--no_onnx", action="store_true", help="skip the ONNX Runtime rows")
    p.add_argument("--no_detector", action="store_true", help="skip the face detector timing")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per row (default: 10 at batch 1, 5 otherwise)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per row (JAX compiles here)")
    p.add_argument("--num_landmarks", type=int, default=98)
    p.add_argument("--num_neighbors", type=int, default=10)
    p.add_argument("--net_stride", type=int, default=32)
    return p.parse_args(args)


def main(argv):
    """argv as absl's app.run passes it: argv[0] is the program name (`--mode=bench` of
    pipnet_jax.main calls this with the config's backbone, image size, batch sizes, repeats)."""
    a = parse_args(list(argv[1:]))
    print(device_info())
    print(f"PIPNet {a.backbone}, {a.image_size}x{a.image_size}, {a.num_landmarks} landmarks, "
          f"{a.num_neighbors} neighbours, net_stride {a.net_stride}; forward + decode")
    rows = run_benchmark(a.backbone, a.image_size, [int(b) for b in a.batch_sizes.split(",")],
                         a.repeats, a.warmup, a.num_landmarks, a.num_neighbors, a.net_stride,
                         torch_compile=not a.no_torch_compile, tflite=not a.no_tflite,
                         onnx=not a.no_onnx)
    print(format_table(rows))
    if not a.no_detector:
        print(format_detector_table(detector_timings()))
    return rows


def run_from_config(config, workdir: str) -> list[dict]:
    """`--mode=bench` of pipnet_jax.main: main() on the config's backbone and input size, batch
    1 and 32 and the default repeats, or what an optional `config.bench` section (batch_sizes,
    repeats) says. The workdir is not used: the benchmark writes nothing."""
    bench = config.get("bench") or {}
    batch = ",".join(str(b) for b in bench.get("batch_sizes", MODE_BATCH_SIZES))
    repeats = bench.get("repeats")
    return main(["bench", f"--backbone={config.model.backbone}", f"--image_size={config.model.input_size}",
                 f"--batch_sizes={batch}"] + ([f"--repeats={repeats}"] if repeats else []))


if __name__ == "__main__":
    main(sys.argv)
