"""Evaluation throughput (faces/s): `Evaluator.run`, the distributed evaluation that training and
`--mode=eval` use, over a split held in memory.

    python -m pipnet_jax.bench.evaluation [--faces=256] [--batch_size=32] [--input_size=256]

One table, rows measured in one run: 1 and 8 CPU devices (forced with XLA_FLAGS in a child
process per row; on a 2-core CPU the 8 "devices" share the same cores) and, when there is one,
the GPU. A row times whole passes over the split (the batches sharded over every device, the
landmarks gathered, NME / FR / AUC computed), after one untimed pass that compiles. The model
is PIPNet ResNet-18 with 98 points and random weights (speed does not depend on them)."""
import argparse
import json

import jax
import numpy as np

from pipnet_jax.bench.timing import Column, format_table as markdown_table, run_child, time_calls
from pipnet_jax.evaluate import Evaluator
from pipnet_jax.files import IMAGE_SIZE
from pipnet_jax.inference import make_predict_fn
from pipnet_jax.landmarks import get_landmark_set
from pipnet_jax.models import PIPNet

TABLE = [Column("device", lambda r: r["device_kind"][:22]), Column("devices", "devices"),
         Column("batch", "batch"), Column("input", "input"), Column("faces", "faces"),
         Column("faces/s", "faces_per_s", ".1f"), Column("s per pass", "seconds", ".2f")]


class RandomSplit:
    """`faces` random 256x256 faces with random landmarks, batched as pipeline.eval_batches
    batches a split (the last batch padded, valid=False)."""
    key = "test"

    def __init__(self, faces: int, num_points: int):
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 256, (faces, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        self.landmarks = rng.uniform(0.2, 0.8, (faces, num_points, 2)).astype(np.float32)

    def batches(self, batch_size: int):
        for start in range(0, len(self.images), batch_size):
            images, landmarks = self.images[start:start + batch_size], self.landmarks[start:start + batch_size]
            pad = batch_size - len(images)
            yield {"image": np.concatenate([images, np.zeros((pad,) + images.shape[1:], np.uint8)]),
                   "landmarks": np.concatenate([landmarks, np.zeros((pad,) + landmarks.shape[1:], np.float32)]),
                   "valid": np.arange(batch_size) < len(images)}


def measure(faces: int, batch_size: int, input_size: int, repeats: int) -> dict:
    """In a child process: passes over the split on all local devices."""
    landmark_set = get_landmark_set("wflw")
    model = PIPNet(landmark_set.num_points, "resnet18")
    variables = model.init(jax.random.PRNGKey(0), np.zeros((1, input_size, input_size, 3), np.float32))
    n = landmark_set.num_points
    neighbors = np.stack([np.roll(np.arange(n), -k)[1:11] for k in range(n)])
    evaluator = Evaluator(make_predict_fn(model, neighbors, input_size), RandomSplit(faces, n),
                          landmark_set, batch_size)
    times = time_calls(lambda: evaluator.run(variables).metrics, warmup=1, repeats=repeats)
    seconds = float(np.median(times))
    return {"device_kind": jax.devices()[0].device_kind, "devices": jax.device_count(),
            "batch": batch_size, "input": input_size, "faces": faces, "seconds": seconds,
            "faces_per_s": faces / seconds}


def run_row(devices, args) -> dict:
    return run_child("pipnet_jax.bench.evaluation", [
        "--child", f"--faces={args.faces}", f"--batch_size={args.batch_size}",
        f"--input_size={args.input_size}", f"--repeats={args.repeats}"], devices)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipnet_jax.bench.evaluation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=256, help="faces in the split")
    p.add_argument("--batch_size", type=int, default=32, help="global eval batch (eval.batch_size)")
    p.add_argument("--input_size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3, help="timed passes per row (the median is shown)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.faces, args.batch_size, args.input_size, args.repeats)))
        return []
    rows = [run_row(1, args), run_row(8, args)]
    if jax.devices()[0].platform == "gpu":
        rows.append(run_row(None, args))
    print(f"Evaluation, PIPNet resnet18 (98 points), {args.input_size}x{args.input_size} input, "
          f"global batch {args.batch_size}, median of {args.repeats} passes")
    print(markdown_table(rows, TABLE))
    return rows


if __name__ == "__main__":
    main()
