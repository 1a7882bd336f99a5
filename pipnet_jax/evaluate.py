"""Evaluation: predictions over eval batches -> NME / FR / AUC per split, per-face NMEs, CED.

An `Evaluator` is one evaluated split (big_vision's evaluators): `Evaluator(predict_fn,
eval_set, landmark_set).run(variables)`; `evaluate(evaluators, variables, workdir, ...)` runs
them all and writes, per tag (no suffix for 'final', `_<tag>` otherwise):
  results.json     {split: {nme, fr, auc, count}, 'provenance': {pipnet_jax_version, git_commit}}
  nmes.csv         split,image_id,nme,failure: one row per face, failure = NME > 0.1 (FR)
  ced.csv          split,nme,fraction: the CED curve (fraction of faces with NME <= nme) on
                   metrics.ced_curve's grid, to overlay on a paper's curves
  ced.png          the same curves drawn as papers draw them (matplotlib, Agg), NME/FR/AUC in
                   the legend
  predictions.png  faces of the first split, ground truth green, prediction red
No TensorFlow here: an eval set is anything with `key` and `batches(batch_size)` giving dicts
with 'image' (uint8 NHWC), 'landmarks' (normalised GT) and optionally 'valid' (padding mask)
and 'image_id' (str; where absent or empty a face is named by its index in the split)."""
import csv
import dataclasses
import io
import os
from typing import Callable, Iterable

import cv2
import jax
import numpy as np
from jax.experimental import multihost_utils
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipnet_jax import parallel
from pipnet_jax.files import atomic_write_bytes, atomic_write_text, write_image_atomic, write_json_atomic
from pipnet_jax.metrics import FAILURE_THRESHOLD, ced_curve, failures, fr_auc, nme, normalizer
from pipnet_jax.version import provenance

# results.json's key for the version and commit that made it (every other key is a split)
PROVENANCE_KEY = "provenance"


def predict_split(predict: Callable, batches: Iterable[dict]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(predicted landmarks, GT landmarks, images, image ids) of the valid entries, all on the
    host. A face without a stored id (no 'image_id' in its batch, or '') gets its index in
    the split."""
    preds, gts, images, ids = [], [], [], []
    for batch in batches:
        valid = np.asarray(batch.get("valid", np.ones(len(batch["image"]), bool)))
        landmarks = np.asarray(predict(batch["image"]))
        preds.append(landmarks[valid])
        gts.append(np.asarray(batch["landmarks"])[valid])
        images.append(np.asarray(batch["image"])[valid])
        stored = np.asarray(batch.get("image_id", [""] * len(valid)), dtype=str)[valid]
        first = len(ids)
        ids.extend(str(s) or str(first + k) for k, s in enumerate(stored))
    if not preds:
        raise ValueError("the evaluation split is empty")
    return np.concatenate(preds), np.concatenate(gts), np.concatenate(images), np.array(ids, dtype=str)


def split_metrics(pred: np.ndarray, gt: np.ndarray, landmark_set, threshold: float = FAILURE_THRESHOLD) -> dict:
    """NME (inter-ocular as the original, in the normalised crop frame), FR and AUC at 0.1."""
    nmes = nme(pred, gt, normalizer(gt, landmark_set, "inter_ocular"))
    fr, auc = fr_auc(nmes, threshold)
    return {"nme": float(np.mean(nmes)), "fr": fr, "auc": auc, "count": int(len(nmes)),
            "nmes": nmes}


def format_table(results: dict) -> str:
    lines = [f"{'split':<22} {'faces':>6} {'NME %':>8} {'FR@0.1 %':>9} {'AUC@0.1':>8}"]
    for split, r in results.items():
        lines.append(f"{split:<22} {r['count']:>6} {100 * r['nme']:>8.3f} {100 * r['fr']:>9.2f} "
                     f"{r['auc']:>8.4f}")
    return "\n".join(lines)


def _csv_text(header: tuple, rows: Iterable) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def nmes_csv(splits: dict, threshold: float = FAILURE_THRESHOLD) -> str:
    """splits: {split: (image ids, per-face NMEs)} -> CSV text, one row per face:
    split,image_id,nme,failure (failure 1 where NME > threshold). NMEs are written in full
    (round-trip) precision, so their mean is results.json's nme."""
    return _csv_text(("split", "image_id", "nme", "failure"),
                     ((split, i, float(e), int(f)) for split, (ids, nmes) in splits.items()
                      for i, e, f in zip(ids, nmes, failures(nmes, threshold))))


def ced_csv(curves: dict, threshold: float = FAILURE_THRESHOLD) -> str:
    """curves: {split: per-face NMEs} -> CSV text split,nme,fraction on metrics.ced_curve's grid
    (grid points rounded to 12 significant digits: 0.0003, not 0.00030000000000000003)."""
    rows = []
    for split, nmes in curves.items():
        xs, ys = ced_curve(nmes, threshold)
        rows.extend((split, float(f"{x:.12g}"), float(y)) for x, y in zip(xs, ys))
    return _csv_text(("split", "nme", "fraction"), rows)


def ced_figure(curves: dict, threshold: float = FAILURE_THRESHOLD, dpi: int = 150) -> Figure:
    """The cumulative error distribution of every split, drawn as papers draw it: x = NME from
    0 to the failure threshold, y = fraction of faces with NME <= x, grid, and a legend with
    each curve's NME / FR / AUC. A bare Figure on matplotlib's Agg canvas: no display, no pyplot."""
    figure = Figure(figsize=(6.4, 4.8), dpi=dpi)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for i, (name, nmes) in enumerate(curves.items()):
        xs, ys = ced_curve(nmes, threshold)
        fr, auc = fr_auc(nmes, threshold)
        ax.plot(xs, ys, linewidth=1.8, linestyle=("-", "--", "-.", ":")[i // 10 % 4],
                label=f"{name}: NME {100 * float(np.mean(nmes)):.2f}%, FR {100 * fr:.2f}%, "
                      f"AUC {auc:.4f}")
    ax.set_xlim(0, threshold)
    ax.set_ylim(0, 1)
    ax.set_xlabel("NME")
    ax.set_ylabel("fraction of faces")
    ax.set_title(f"Cumulative error distribution (FR and AUC at {threshold:g})")
    ax.grid(True, linestyle=":", linewidth=0.8)
    ax.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    return figure


def render_ced(curves: dict, threshold: float = FAILURE_THRESHOLD, dpi: int = 150) -> bytes:
    """PNG bytes of `ced_figure`, rendered in memory."""
    out = io.BytesIO()
    ced_figure(curves, threshold, dpi).canvas.print_png(out)
    return out.getvalue()


def draw_ced(path: str, curves: dict, threshold: float = FAILURE_THRESHOLD) -> None:
    """Writes `render_ced` atomically to `path`."""
    atomic_write_bytes(path, render_ced(curves, threshold))


def draw_predictions(images: np.ndarray, pred: np.ndarray, gt: np.ndarray, columns: int = 4) -> np.ndarray:
    """A grid (RGB uint8) of faces with GT (green) and predicted (red) landmarks."""
    tiles = []
    for image, p, g in zip(images, pred, gt):
        tile = np.ascontiguousarray(image).copy()
        size = np.array(tile.shape[1::-1])
        for points, colour in ((g, (0, 200, 0)), (p, (230, 0, 0))):
            for x, y in np.asarray(points) * size:
                if np.isfinite(x) and np.isfinite(y):  # a diverged model's NaNs are not drawn
                    cv2.circle(tile, (int(x), int(y)), 2, colour, -1)
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


@dataclasses.dataclass(frozen=True)
class SplitResult:
    metrics: dict            # nme, fr, auc, count
    nmes: np.ndarray         # per face
    images: np.ndarray       # the faces (uint8), for pictures
    pred: np.ndarray
    gt: np.ndarray
    image_ids: np.ndarray    # str per face: the set's stored image_id, else its index in the split


def sharded_predict(predict_fn: Callable, variables, mesh) -> Callable:
    """predict(images) -> landmarks for a global batch that every host holds whole: each host
    feeds its slice, every device of every host computes its part, and the landmarks are
    gathered back to every host. The batch must split evenly over the mesh's devices."""
    variables = jax.device_put(variables, parallel.replicated(mesh))
    sharding, count, host = parallel.batch_sharding(mesh), jax.process_count(), jax.process_index()

    def predict(images):
        per_host = len(images) // count
        local = np.asarray(images)[host * per_host:(host + 1) * per_host]
        landmarks = predict_fn(variables, jax.make_array_from_process_local_data(sharding, local))[0]
        return multihost_utils.process_allgather(landmarks, tiled=True)

    return predict


class Evaluator:
    """One evaluated split: predict_fn(variables, images uint8) -> (landmarks, confidence),
    jitted. Every host reads the whole split in stored order (reading is cheap next to the
    network) and the network runs sharded over all devices of all hosts (`sharded_predict`), so
    every host ends with every face's result. batch_size (global) is rounded up to a multiple
    of the device count; padded faces are dropped."""

    def __init__(self, predict_fn: Callable, eval_set, landmark_set, batch_size: int = 32, mesh=None):
        self.predict_fn, self.eval_set, self.landmark_set = predict_fn, eval_set, landmark_set
        self.batch_size, self.mesh = batch_size, mesh

    @property
    def key(self) -> str:
        return self.eval_set.key

    def run(self, variables) -> SplitResult:
        mesh = self.mesh or parallel.make_mesh()
        batch_size = -(-self.batch_size // mesh.devices.size) * mesh.devices.size
        pred, gt, images, ids = predict_split(sharded_predict(self.predict_fn, variables, mesh),
                                              self.eval_set.batches(batch_size))
        metrics = split_metrics(pred, gt, self.landmark_set)
        return SplitResult(metrics, metrics.pop("nmes"), images, pred, gt, ids)


CURVE_FILE, CURVE_COLUMNS = "eval_curve.csv", ("step", "split", "nme", "fr", "auc")


def append_curve(path: str, step: int, results: dict) -> None:
    """Adds `step`'s rows (one per split) to the learning curve at `path`, replacing rows of
    this step and later ones (a resumed run recomputes them)."""
    rows = []
    if os.path.exists(path):
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) < step]
    rows += [{"step": step, "split": split, **{k: r[k] for k in CURVE_COLUMNS[2:]}}
             for split, r in results.items()]
    atomic_write_text(path, _csv_text(CURVE_COLUMNS, ([r[k] for k in CURVE_COLUMNS] for r in rows)))


def read_curve(path: str) -> list[dict]:
    """eval_curve.csv -> [{'step': int, 'split': str, 'nme': float, 'fr': float, 'auc': float}]."""
    with open(path, newline="") as f:
        return [{"step": int(r["step"]), "split": r["split"], **{k: float(r[k]) for k in CURVE_COLUMNS[2:]}}
                for r in csv.DictReader(f)]


def evaluate(evaluators: list, variables, tag: str = "final", *, workdir: str, num_pictures: int = 16,
             writer=None, step: int = 0) -> dict:
    """Runs every evaluator; on process 0 writes results[_<tag>].json ({key: metrics}),
    nmes[_<tag>].csv (every face), ced[_<tag>].csv and ced[_<tag>].png (every split) and a
    picture of predictions on the first split (see the module docstring), and prints a table.
    tag 'curve' (train.eval_every_steps) writes only its rows of eval_curve.csv and the
    TensorBoard scalars."""
    variables = jax.device_get(variables)  # replicated anew over each evaluator's mesh
    results, curves, faces, picture = {}, {}, {}, None
    for evaluator in evaluators:
        r = evaluator.run(variables)
        results[evaluator.key], curves[evaluator.key] = r.metrics, r.nmes
        faces[evaluator.key] = (r.image_ids, r.nmes)
        if picture is None and tag != "curve":
            picture = draw_predictions(r.images[:num_pictures], r.pred, r.gt)
    if tag == "curve":
        if jax.process_index() == 0:
            os.makedirs(workdir, exist_ok=True)
            append_curve(os.path.join(workdir, CURVE_FILE), step, results)
            if writer is not None:
                writer.write_scalars(step, {f"eval/{s}/{k}": v for s, r in results.items()
                                            for k, v in r.items() if k != "count"})
        return results
    if jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        suffix = "" if tag == "final" else f"_{tag}"
        write_json_atomic(os.path.join(workdir, f"results{suffix}.json"),
                          {**results, PROVENANCE_KEY: provenance()})
        atomic_write_text(os.path.join(workdir, f"nmes{suffix}.csv"), nmes_csv(faces))
        atomic_write_text(os.path.join(workdir, f"ced{suffix}.csv"), ced_csv(curves))
        draw_ced(os.path.join(workdir, f"ced{suffix}.png"), curves)
        write_image_atomic(os.path.join(workdir, f"predictions{suffix}.png"), picture)
        if writer is not None:
            writer.write_scalars(step, {f"eval/{s}/{k}": v for s, r in results.items()
                                        for k, v in r.items() if k != "count"})
            writer.write_images(step, {"eval/predictions": picture[None]})
        print(f"evaluation ({tag}):\n{format_table(results)}")
    return results
