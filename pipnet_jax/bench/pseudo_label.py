"""Pseudo-labelling throughput (faces/s): the STC labelling pass over an image-folder corpus.

    python -m pipnet_jax.bench.pseudo_label [--faces=512] [--batch_size=32] [--input_size=256]

One table, rows measured in one run: 1 and 8 CPU devices (forced with XLA_FLAGS in a child
process per row, so each starts JAX afresh; on a 2-core CPU the 8 "devices" share the same
cores) and, when there is one, the GPU. Two numbers per row:
  end to end   stc.pseudo_label as `--mode=stc` runs it: read + decode the JPEG crops,
               the sharded predict (forward + decode with NRM merge), write the TFRecord
               shards and the manifest (needs TensorFlow; 'n/a' without it)
  model only   the sharded predict on an in-memory batch (the accelerator's share)
The model is PIPNet ResNet-18 with 98 points and random weights (speed does not depend on
the weights); the corpus is synthetic 256x256 JPEG face crops written to a temporary folder."""
import argparse
import json
import os
import tempfile

import cv2
import jax
import numpy as np

from pipnet_jax.bench.timing import Column, format_table as markdown_table, median_ms, run_child, time_calls
from pipnet_jax.data import annotations as A
from pipnet_jax.data import synthetic
from pipnet_jax.files import IMAGE_SIZE, JPEG_QUALITY
from pipnet_jax.inference import make_sharded_predict
from pipnet_jax.models import PIPNet

TABLE = [Column("device", lambda r: r["device_kind"][:22]), Column("devices", "devices"),
         Column("batch", "batch"), Column("input", "input"), Column("faces", "faces"),
         Column("end to end faces/s", lambda r: "n/a" if r["end_to_end_faces_per_s"] is None
                else f"{r['end_to_end_faces_per_s']:.1f}", align=">"),
         Column("model only faces/s", "model_faces_per_s", ".1f")]


def write_corpus(folder: str, faces: int) -> None:
    """`faces` 256x256 crops from the synthetic generator (the style-'a' test faces)."""
    raw = os.path.join(folder, "raw")
    synthetic.write_wflw_dataset(raw, 0, faces, seed=0)
    records = A.read_wflw(os.path.join(raw, synthetic.ANNOTATION_DIR, "list_98pt_rect_attr_test.txt"),
                          os.path.join(raw, "WFLW_images"))
    crops = os.path.join(folder, "crops")
    os.makedirs(crops, exist_ok=True)
    for i, r in enumerate(records):
        crop, _ = A.crop_face(None, r, "wflw", IMAGE_SIZE)  # RGB
        cv2.imwrite(os.path.join(crops, f"{i:05d}.jpg"), crop[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])


def measure(corpus_dir: str, batch_size: int, input_size: int, repeats: int) -> dict:
    """In a child process: both throughputs over all local devices."""
    n = 98
    model = PIPNet(n, "resnet18")
    variables = model.init(jax.random.PRNGKey(0), np.zeros((1, input_size, input_size, 3), np.float32))
    neighbors = np.stack([np.roll(np.arange(n), -k)[1:11] for k in range(n)])
    predict = make_sharded_predict(model, variables, neighbors, input_size)
    batch = np.random.RandomState(0).randint(0, 256, (batch_size, 256, 256, 3)).astype(np.uint8)
    ms = median_ms(lambda: predict(batch), warmup=1, repeats=repeats)  # warm-up: compile
    row = {"device_kind": jax.devices()[0].device_kind, "devices": jax.local_device_count(),
           "batch": batch_size, "input": input_size, "model_faces_per_s": batch_size * 1e3 / ms}
    # Lazy: only the end-to-end number needs TensorFlow (the corpus reader and the shard writer
    # import it), and this module must run on the GPU machines, which have none.
    try:
        from pipnet_jax.data.corpus import open_corpus
        from pipnet_jax.stc.labelling import pseudo_label
    except ImportError as e:
        if e.name not in ("tensorflow", "tensorflow_datasets"):
            raise
        return {**row, "faces": 0, "seconds": None, "end_to_end_faces_per_s": None}
    corpus = open_corpus(corpus_dir)
    with tempfile.TemporaryDirectory() as out:
        seconds, = time_calls(lambda: pseudo_label(
            predict, corpus, out, "std", "bench", shard_size=4 * batch_size, batch_size=batch_size,
            log=lambda *_: None), warmup=0, repeats=1)
    return {**row, "faces": len(corpus), "seconds": seconds,
            "end_to_end_faces_per_s": len(corpus) / seconds}


def run_row(devices, corpus_dir: str, args) -> dict:
    return run_child("pipnet_jax.bench.pseudo_label", [
        f"--child={corpus_dir}", f"--batch_size={args.batch_size}",
        f"--input_size={args.input_size}", f"--repeats={args.repeats}"], devices)


def format_table(rows) -> str:
    return markdown_table(rows, TABLE)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m pipnet_jax.bench.pseudo_label", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=int, default=512, help="corpus size")
    p.add_argument("--batch_size", type=int, default=32, help="a multiple of 8 (the 8-device row)")
    p.add_argument("--input_size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5, help="timed predict calls (model only)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.batch_size % 8:
        p.error(f"--batch_size={args.batch_size} must be a multiple of 8 (the 8-device row)")
    if args.child:
        print(json.dumps(measure(args.child, args.batch_size, args.input_size, args.repeats)))
        return []
    with tempfile.TemporaryDirectory() as folder:
        write_corpus(folder, args.faces)
        crops = os.path.join(folder, "crops")
        rows = [run_row(1, crops, args), run_row(8, crops, args)]
        if jax.devices()[0].platform == "gpu":
            rows.append(run_row(None, crops, args))
    print(f"STC pseudo-labelling, PIPNet resnet18 (98 points), {args.input_size}x{args.input_size} "
          f"input, batch {args.batch_size}")
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
