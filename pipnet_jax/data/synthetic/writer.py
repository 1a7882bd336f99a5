"""Procedural faces in the raw WFLW format: writing a data set, and its command line.

The files follow WFLW's layout byte for byte, so every WFLW code path (parser, crop rule, TFDS
builder, evaluation subsets) runs on them unchanged:

  root/WFLW_images/synthetic/{train,test}_NNNNN.jpg
  root/WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt

    python -m pipnet_jax.data.synthetic --out DIR [--num_train N --num_test N --style b]
"""
import argparse
import json
import math
import multiprocessing
import os
import pathlib

import cv2
import numpy as np
from tqdm import tqdm

from pipnet_jax.data.synthetic.render import ATTRIBUTES, draw_landmarks, generate_face
from pipnet_jax.data.synthetic.shape import STYLES, get_style
from pipnet_jax.files import atomic_write_bytes, encode_jpeg

VERSION = 1  # bump when the generator's output changes: existing data sets then get rewritten
SPLITS = ("train", "test")
IMAGE_SUBDIR = "synthetic"
ANNOTATION_DIR = "WFLW_annotations/list_98pt_rect_attr_train_test"
INFO_FILE = "synthetic_info.json"


def _face_rng(seed, split, index):
    # One stream per image, independent of worker count and of the other images.
    return np.random.default_rng([int(seed), SPLITS.index(split), int(index)])


def annotation_line(landmarks, rect, attributes, image_path):
    """One WFLW annotation line: 196 coords, 4 rect values, 6 flags, image path."""
    numbers = [f"{v:.6f}" for v in np.asarray(landmarks, np.float64).reshape(-1)]
    numbers += [f"{v:.6f}" for v in rect]
    flags = [str(int(attributes[name])) for name in ATTRIBUTES]
    return " ".join(numbers + flags + [image_path])




def _write_face(job):
    """Worker: renders and writes one image -> (split, annotation line)."""
    root, split, index, seed, size, style = job
    img, lm, rect, attributes = generate_face(_face_rng(seed, split, index), size, style)
    rel = f"{IMAGE_SUBDIR}/{split}_{index:05d}.jpg"
    jpeg = encode_jpeg(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), rel)
    atomic_write_bytes(pathlib.Path(root) / "WFLW_images" / rel, jpeg)
    return split, annotation_line(lm, rect, attributes, rel)


def _init_worker():
    cv2.setNumThreads(1)  # one process per core already; cv2's own threads would oversubscribe


def annotation_file(root, split):
    return pathlib.Path(root) / ANNOTATION_DIR / f"list_98pt_rect_attr_{split}.txt"


def write_wflw_dataset(root, num_train, num_test, seed=0, image_size=(256, 256), workers=None,
                       style="a"):
    """Writes a synthetic data set in WFLW's raw layout under root -> root (a Path).

    Deterministic for (seed, counts, image_size, style): each image has its own random stream
    derived from (seed, split, index), so the bytes do not depend on `workers` (processes;
    default os.cpu_count()). Skips the work when root already holds a complete data set with
    the same parameters (synthetic_info.json). Every file is written to a temp name and
    renamed; the annotation files and then synthetic_info.json come last, so an interrupted
    run never leaves a complete-looking data set.
    """
    root = pathlib.Path(root)
    h, w = (int(v) for v in image_size)
    if min(num_train, num_test) < 0 or seed < 0 or min(h, w) < 16:
        raise ValueError(f"need num_train, num_test >= 0, seed >= 0 and an image size of at "
                         f"least 16x16; got {num_train}, {num_test}, {seed}, {image_size}")
    get_style(style)
    info = dict(version=VERSION, seed=int(seed), num_train=int(num_train),
                num_test=int(num_test), image_size=[h, w])
    if style != "a":  # absent means 'a': data sets written before styles existed stay valid
        info["style"] = style
    info_path = root / INFO_FILE
    files = {split: annotation_file(root, split) for split in SPLITS}
    try:
        done = json.loads(info_path.read_text()) == info
    except (OSError, ValueError):
        done = False
    if done and all(f.is_file() for f in files.values()):
        return root

    # Invalidate first: if this run dies, nothing may claim the half-rewritten images.
    for path in (info_path, *files.values()):
        path.unlink(missing_ok=True)
    (root / "WFLW_images" / IMAGE_SUBDIR).mkdir(parents=True, exist_ok=True)
    (root / ANNOTATION_DIR).mkdir(parents=True, exist_ok=True)
    jobs = [(str(root), split, i, int(seed), (h, w), style)
            for split, n in zip(SPLITS, (num_train, num_test)) for i in range(1, n + 1)]
    lines = {split: [] for split in SPLITS}
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    with tqdm(total=len(jobs), desc=f"synthetic WFLW -> {root}", unit="face") as bar:
        if workers == 1 or len(jobs) < 2 * workers:
            results, pool = map(_write_face, jobs), None
        else:
            # spawn: safe even if the caller has threads (JAX, TF) running.
            pool = multiprocessing.get_context("spawn").Pool(workers, _init_worker)
            chunk = max(1, min(64, len(jobs) // (8 * workers)))  # few round trips, even load
            results = pool.imap(_write_face, jobs, chunksize=chunk)
        try:
            for split, line in results:  # imap keeps job order: lines follow the indices
                lines[split].append(line)
                bar.update()
        finally:
            if pool is not None:
                pool.terminate()
    for split in SPLITS:
        atomic_write_bytes(files[split], "".join(line + "\n" for line in lines[split]).encode())
    atomic_write_bytes(info_path, (json.dumps(info, indent=1) + "\n").encode())
    return root


def render_preview(path, n=16, seed=0, image_size=(256, 256), style="a"):
    """Saves a grid of n generated faces with landmarks, rects and flags drawn -> path."""
    h, w = image_size
    cols = math.ceil(math.sqrt(n))
    grid = np.zeros((math.ceil(n / cols) * h, cols * w, 3), np.uint8)
    for i in range(n):
        img, lm, rect, attributes = generate_face(_face_rng(seed, "test", 100000 + i), (h, w),
                                                  style)
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = draw_landmarks(img, lm, rect, attributes)
    if not cv2.imwrite(str(path), grid):
        raise OSError(f"could not write the preview image {path}")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pipnet_jax.data.synthetic",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="data set root (WFLW layout)")
    parser.add_argument("--num_train", type=int, default=7500)
    parser.add_argument("--num_test", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image_size", type=int, nargs=2, default=(256, 256),
                        metavar=("H", "W"))
    parser.add_argument("--workers", type=int, default=None, help="default: all cores")
    parser.add_argument("--style", default="a", choices=sorted(STYLES))
    parser.add_argument("--preview", default=None, help="also save a preview grid PNG here")
    args = parser.parse_args(argv)
    root = write_wflw_dataset(args.out, args.num_train, args.num_test, args.seed,
                              tuple(args.image_size), args.workers, args.style)
    print(f"WFLW-format synthetic data set: {root}")
    if args.preview:
        render_preview(args.preview, seed=args.seed, image_size=tuple(args.image_size),
                       style=args.style)
        print(f"preview: {args.preview}")
