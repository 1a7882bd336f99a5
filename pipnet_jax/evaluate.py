"""Evaluation: predictions over eval batches -> NME / FR / AUC per split, CED plot, overlays.

An `Evaluator` is one evaluated split (big_vision's evaluators): `Evaluator(predict_fn,
eval_set, landmark_set).run(variables)`; `evaluate(evaluators, variables, workdir, ...)` runs
them all and writes results.json, ced.png and predictions.png. No TensorFlow here: an eval set
is anything with `key` and `batches(batch_size)` giving dicts with 'image' (uint8 NHWC),
'landmarks' (normalised GT) and optionally 'valid' (padding mask)."""
import dataclasses
import os
from typing import Callable, Iterable

import cv2
import jax
import numpy as np

from pipnet_jax.files import write_image_atomic, write_json_atomic
from pipnet_jax.metrics import ced_curve, fr_auc, nme, normalizer


def predict_split(predict: Callable, batches: Iterable[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted landmarks, GT landmarks, images) of the valid entries, all on the host."""
    preds, gts, images = [], [], []
    for batch in batches:
        valid = np.asarray(batch.get("valid", np.ones(len(batch["image"]), bool)))
        landmarks = np.asarray(predict(batch["image"]))
        preds.append(landmarks[valid])
        gts.append(np.asarray(batch["landmarks"])[valid])
        images.append(np.asarray(batch["image"])[valid])
    if not preds:
        raise ValueError("the evaluation split is empty")
    return np.concatenate(preds), np.concatenate(gts), np.concatenate(images)


def split_metrics(pred: np.ndarray, gt: np.ndarray, landmark_set, threshold: float = 0.1) -> dict:
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


def draw_ced(path: str, curves: dict, threshold: float = 0.1, size=(640, 480)) -> None:
    """Cumulative error distribution (fraction of faces with NME <= x) per split, as a PNG."""
    w, h = size
    left, bottom, right, top = 60, 50, 20, 20
    canvas = np.full((h, w, 3), 255, np.uint8)
    x0, y0, x1, y1 = left, h - bottom, w - right, top
    cv2.rectangle(canvas, (x0, y1), (x1, y0), (0, 0, 0), 1)
    for k in range(6):
        fx = k / 5
        cv2.putText(canvas, f"{threshold * fx:.2f}", (int(x0 + fx * (x1 - x0)) - 14, y0 + 18),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(canvas, f"{fx:.1f}", (x0 - 30, int(y0 - fx * (y0 - y1)) + 4),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(canvas, "NME", ((x0 + x1) // 2 - 10, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    colours = [(200, 60, 20), (20, 140, 20), (20, 20, 200), (160, 20, 160), (20, 160, 160),
               (120, 120, 0), (0, 90, 200), (90, 90, 90)]
    for i, (name, nmes) in enumerate(curves.items()):
        xs, ys = ced_curve(nmes, threshold)
        pts = np.stack([x0 + xs / threshold * (x1 - x0), y0 - ys * (y0 - y1)], -1).astype(np.int32)
        colour = colours[i % len(colours)]
        cv2.polylines(canvas, [pts], False, colour, 2)
        cv2.putText(canvas, name, (x0 + 10, y1 + 18 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)
    write_image_atomic(path, canvas[..., ::-1])  # drawn in BGR colours


def draw_predictions(images: np.ndarray, pred: np.ndarray, gt: np.ndarray, columns: int = 4) -> np.ndarray:
    """A grid (RGB uint8) of faces with GT (green) and predicted (red) landmarks."""
    tiles = []
    for image, p, g in zip(images, pred, gt):
        tile = np.ascontiguousarray(image).copy()
        size = np.array(tile.shape[1::-1])
        for (gx, gy), (px, py) in zip(g * size, p * size):
            cv2.circle(tile, (int(gx), int(gy)), 2, (0, 200, 0), -1)
            cv2.circle(tile, (int(px), int(py)), 2, (230, 0, 0), -1)
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


class Evaluator:
    """One evaluated split: predict_fn(variables, images uint8) -> (landmarks, confidence)."""

    def __init__(self, predict_fn: Callable, eval_set, landmark_set, batch_size: int = 32):
        self.predict_fn, self.eval_set, self.landmark_set = predict_fn, eval_set, landmark_set
        self.batch_size = batch_size

    @property
    def key(self) -> str:
        return self.eval_set.key

    def run(self, variables) -> SplitResult:
        pred, gt, images = predict_split(lambda im: self.predict_fn(variables, im)[0],
                                         self.eval_set.batches(self.batch_size))
        metrics = split_metrics(pred, gt, self.landmark_set)
        return SplitResult(metrics, metrics.pop("nmes"), images, pred, gt)


def evaluate(evaluators: list, variables, tag: str = "final", *, workdir: str, num_pictures: int = 16,
             writer=None, step: int = 0) -> dict:
    """Runs every evaluator; on process 0 writes results[_<tag>].json ({key: metrics}), a CED
    plot of every split and a picture of predictions on the first, and prints a table."""
    variables = jax.device_get(variables)  # evaluation runs on each host's first device
    results, curves, picture = {}, {}, None
    for evaluator in evaluators:
        r = evaluator.run(variables)
        results[evaluator.key], curves[evaluator.key] = r.metrics, r.nmes
        if picture is None:
            picture = draw_predictions(r.images[:num_pictures], r.pred, r.gt)
    if jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        suffix = "" if tag == "final" else f"_{tag}"
        write_json_atomic(os.path.join(workdir, f"results{suffix}.json"), results)
        draw_ced(os.path.join(workdir, f"ced{suffix}.png"), curves)
        write_image_atomic(os.path.join(workdir, f"predictions{suffix}.png"), picture)
        if writer is not None:
            writer.write_scalars(step, {f"eval/{s}/{k}": v for s, r in results.items()
                                        for k, v in r.items() if k != "count"})
            writer.write_images(step, {"eval/predictions": picture[None]})
        print(f"evaluation ({tag}):\n{format_table(results)}")
    return results
