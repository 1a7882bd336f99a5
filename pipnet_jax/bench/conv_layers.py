"""Where the train step's gap to PyTorch is: every convolution shape of PIPNet ResNet-18, its
forward, input gradient and weight gradient timed in JAX (jit, XLA) and in PyTorch eager
(aten's convolution and convolution_backward, what autograd runs), interleaved.

    python -m pipnet_jax.bench.conv_layers [--batch_size=16] [--image_size=256] [--repeats=5]

One table: per shape and pass the median ms of both and their difference, times the number
of such convolutions in the network; the totals say how much of the step's gap the
convolutions explain. The stem's input gradient is not needed (its input is the image)."""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

from pipnet_jax.bench.timing import Column, format_table

# (name, kernel, stride, in channels, out channels, input side at 256, count in ResNet-18 + heads)
SHAPES = (("stem 7x7/2", 7, 2, 3, 64, 256, 1),
          ("layer1 3x3", 3, 1, 64, 64, 64, 4),
          ("layer2 3x3/2", 3, 2, 64, 128, 64, 1),
          ("layer2 3x3", 3, 1, 128, 128, 32, 3),
          ("layer2 down 1x1/2", 1, 2, 64, 128, 64, 1),
          ("layer3 3x3/2", 3, 2, 128, 256, 32, 1),
          ("layer3 3x3", 3, 1, 256, 256, 16, 3),
          ("layer3 down 1x1/2", 1, 2, 128, 256, 32, 1),
          ("layer4 3x3/2", 3, 2, 256, 512, 16, 1),
          ("layer4 3x3", 3, 1, 512, 512, 8, 3),
          ("layer4 down 1x1/2", 1, 2, 256, 512, 16, 1),
          ("heads 1x1 (5, fused)", 1, 1, 512, 3 * 98 + 2 * 980, 8, 1))
PASSES = ("forward", "input grad", "weight grad")
TABLE = [Column("convolution", "name"), Column("count", "count"), Column("pass", "pass"),
         Column("JAX ms", "jax_ms", ".1f"), Column("torch ms", "torch_ms", ".1f"),
         Column("JAX - torch, x count", "gap_ms", "+.1f")]


def shape_data(k, stride, cin, cout, side, batch):
    """Random NHWC input, HWIO weight and output gradient for one shape (numpy)."""
    rng = np.random.default_rng(0)
    out = side // stride
    return (rng.standard_normal((batch, side, side, cin), np.float32),
            (rng.standard_normal((k, k, cin, cout), np.float32) * 0.05).astype(np.float32),
            rng.standard_normal((batch, out, out, cout), np.float32))


def jax_passes(x, w, g, stride):
    """{pass: fn()} in JAX (NHWC / HWIO, jit, inputs as arguments: nothing folds)."""
    pad = w.shape[0] // 2
    x, w, g = map(jnp.asarray, (x, w, g))

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (stride, stride), ((pad, pad), (pad, pad)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    fwd = jax.jit(conv)
    dx = jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0])
    dw = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])
    return {"forward": lambda: fwd(x, w), "input grad": lambda: dx(x, w, g),
            "weight grad": lambda: dw(x, w, g)}


def torch_passes(x, w, g, stride):
    """{pass: fn()} in PyTorch eager (NCHW / OIHW, as the original trains); each returns
    NCHW tensors (the backward: aten's (input grad, weight grad, bias grad) triple)."""
    pad = w.shape[0] // 2
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    w = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
    g = torch.from_numpy(np.ascontiguousarray(g.transpose(0, 3, 1, 2)))
    args = ([stride] * 2, [pad] * 2, [1, 1], False, [0, 0], 1)

    def backward(mask):
        return torch.ops.aten.convolution_backward(g, x, w, None, *args, mask)

    return {"forward": lambda: torch.ops.aten.convolution(x, w, None, *args),
            "input grad": lambda: backward([True, False, False]),
            "weight grad": lambda: backward([False, True, False])}


def measure(batch_size: int = 16, image_size: int = 256, repeats: int = 5, shapes=SHAPES) -> list[dict]:
    rows = []
    for name, k, stride, cin, cout, side, count in shapes:
        side = side * image_size // 256
        data = shape_data(k, stride, cin, cout, side, batch_size)
        fj, ft = jax_passes(*data, stride), torch_passes(*data, stride)
        for p in PASSES:
            if name.startswith("stem") and p == "input grad":
                continue
            jax.block_until_ready(fj[p]())  # compile
            ft[p]()
            tj, tt = [], []
            for _ in range(repeats):  # interleaved: the machine's noise hits both alike
                start = time.perf_counter()
                jax.block_until_ready(fj[p]())
                tj.append(time.perf_counter() - start)
                start = time.perf_counter()
                ft[p]()
                tt.append(time.perf_counter() - start)
            jms, tms = statistics.median(tj) * 1e3, statistics.median(tt) * 1e3
            rows.append({"name": name, "count": count, "pass": p, "jax_ms": jms, "torch_ms": tms,
                         "gap_ms": (jms - tms) * count})
    return rows


def totals(rows) -> list[dict]:
    out = []
    for p in PASSES + ("all",):
        sel = [r for r in rows if p in ("all", r["pass"])]
        out.append({"name": "total", "count": "", "pass": p,
                    "jax_ms": sum(r["jax_ms"] * r["count"] for r in sel),
                    "torch_ms": sum(r["torch_ms"] * r["count"] for r in sel),
                    "gap_ms": sum(r["gap_ms"] for r in sel)})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipnet_jax.bench.conv_layers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--image_size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5, help="timed calls per pass and framework")
    args = p.parse_args(argv)
    rows = measure(args.batch_size, args.image_size, args.repeats)
    print(f"PIPNet ResNet-18 convolutions, batch {args.batch_size}, {args.image_size}x{args.image_size}, "
          f"float32, {jax.devices()[0].device_kind}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); medians of {args.repeats} interleaved calls")
    print(format_table(rows + totals(rows), TABLE))
    return rows


if __name__ == "__main__":
    main()
