"""Evaluation: predictions over eval batches -> NME / FR / AUC per split, CED plot, overlays.

No TensorFlow here: batches are any iterable of dicts with 'image' (uint8 NHWC),
'landmarks' (normalised GT) and optionally 'valid' (padding mask)."""
from typing import Callable, Iterable

import cv2
import numpy as np

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
    cv2.imwrite(path, canvas)


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
