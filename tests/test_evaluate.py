"""The evaluation files people reuse (nmes.csv, ced.csv, ced.png) against the in-memory metrics.

No model: a fake predict_fn reads the face's index from its first pixel and moves that face's
ground truth by a chosen distance, so every face's NME is known in advance (padding rows, a
set with stored image ids and one without, two tags)."""
import csv
import json
import os

import cv2
import numpy as np
import pytest

from in_memory import PaddedEvalSet
from pipnet_jax.evaluate import Evaluator, ced_figure, evaluate, render_ced
from pipnet_jax.landmarks import LandmarkSet
from pipnet_jax.metrics import FAILURE_THRESHOLD, ced_curve, failures, fr_auc
from pipnet_jax.version import provenance

LANDMARKS = LandmarkSet("in_memory", 5, tuple(range(5)), norm_indices=(0, 1), pupil_groups=((0,), (1,)))
EYES = 0.4  # distance of points 0 and 1: the inter-ocular norm of every face below
# (split key, its per-face NMEs, its stored image ids or None)
SPLITS = [("test", [0.02, 0.05, 0.099, 0.15, 0.3, 0.08, 0.12], [f"img{k}.jpg#0" for k in range(7)]),
          ("cofw68/test", [0.01, 0.2, 0.04], None)]


def make_split(key, nmes, ids, size=16):
    """An eval set of len(nmes) faces and the predict_fn that gives each face its NME."""
    n = len(nmes)
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n)
    landmarks = rng.uniform(0.2, 0.4, (n, 5, 2)).astype(np.float32)
    landmarks[:, 1] = landmarks[:, 0] + [EYES, 0.0]
    shift = np.asarray(nmes, np.float32) * EYES  # every point moved by NME * norm along y

    def predict_fn(variables, batch_images):
        k = np.asarray(batch_images)[:, 0, 0, 0].astype(int)
        pred = landmarks[k] + np.stack([np.zeros(len(k)), shift[k]], -1)[:, None, :]
        return pred.astype(np.float32), np.ones(pred.shape[:2], np.float32)

    return PaddedEvalSet(key, images, landmarks, None if ids is None else tuple(ids)), predict_fn


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("eval") / "w")
    evaluators = []
    for key, nmes, ids in SPLITS:
        eval_set, predict_fn = make_split(key, nmes, ids)
        evaluators.append(Evaluator(predict_fn, eval_set, LANDMARKS, batch_size=3))  # pads 7 -> 9
    results = {tag: evaluate(evaluators, {}, tag, workdir=workdir, num_pictures=2)
               for tag in ("before", "final")}
    in_memory = {e.key: e.run({}) for e in evaluators}
    return workdir, results, in_memory


@pytest.mark.parametrize("tag,suffix", [("final", ""), ("before", "_before")])
def test_nmes_csv_has_every_face_with_its_id_nme_and_failure(run, tag, suffix):
    workdir, results, in_memory = run
    rows = read_csv(os.path.join(workdir, f"nmes{suffix}.csv"))
    assert list(rows[0]) == ["split", "image_id", "nme", "failure"]
    assert [r["split"] for r in rows] == [key for key, nmes, _ in SPLITS for _ in nmes]
    with open(os.path.join(workdir, f"results{suffix}.json")) as f:
        stored = json.load(f)
    assert stored.pop("provenance") == provenance()  # the version and commit that made it
    assert stored == results[tag]
    for key, nmes, ids in SPLITS:
        mine = [r for r in rows if r["split"] == key]
        # the stored id where the set has one, else the face's index in the split
        assert [r["image_id"] for r in mine] == (ids or [str(k) for k in range(len(nmes))])
        values = np.array([float(r["nme"]) for r in mine])
        np.testing.assert_array_equal(values, in_memory[key].nmes)  # written in full precision
        np.testing.assert_allclose(values, nmes, rtol=1e-5)
        flags = np.array([int(r["failure"]) for r in mine])
        np.testing.assert_array_equal(flags, np.asarray(nmes) > FAILURE_THRESHOLD)
        np.testing.assert_array_equal(flags, failures(values))
        assert np.mean(flags) == pytest.approx(stored[key]["fr"], abs=1e-12)
        assert np.mean(values) == pytest.approx(stored[key]["nme"], rel=1e-12)
        assert len(mine) == stored[key]["count"]


def test_ced_csv_is_the_metrics_ced_curve(run):
    workdir, results, in_memory = run
    rows = read_csv(os.path.join(workdir, "ced.csv"))
    assert list(rows[0]) == ["split", "nme", "fraction"]
    for key, _, _ in SPLITS:
        xs, ys = ced_curve(in_memory[key].nmes)
        mine = [r for r in rows if r["split"] == key]
        np.testing.assert_allclose([float(r["nme"]) for r in mine], xs, rtol=0, atol=1e-12)
        np.testing.assert_array_equal([float(r["fraction"]) for r in mine], ys)
        assert xs[0] == 0 and xs[-1] == pytest.approx(FAILURE_THRESHOLD)
        assert 1 - float(mine[-1]["fraction"]) == pytest.approx(results["final"][key]["fr"], abs=1e-12)
    assert [r["split"] for r in rows].count("test") == len(ced_curve([0.0])[0])


def test_ced_png_decodes_and_nothing_half_written_is_left(run):
    workdir, _, _ = run
    for suffix in ("", "_before"):
        picture = cv2.imread(os.path.join(workdir, f"ced{suffix}.png"))
        assert picture is not None and picture.shape == (720, 960, 3)  # 6.4 x 4.8 in at 150 dpi
        assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 20  # curves, text, grid: not blank
    assert sorted(os.listdir(workdir)) == sorted(
        f"{name}{suffix}.{ext}" for suffix in ("", "_before")
        for name, ext in (("results", "json"), ("nmes", "csv"), ("ced", "csv"), ("ced", "png"),
                          ("predictions", "png")))


def test_failure_is_nme_above_the_threshold():
    np.testing.assert_array_equal(failures([0.05, 0.1, 0.1000001, 0.3]), [False, False, True, True])
    nmes = np.array([0.05, 0.1, 0.1000001, 0.3])
    assert np.mean(failures(nmes)) == pytest.approx(fr_auc(nmes)[0], abs=1e-12)


def test_ced_picture_is_drawn_as_papers_draw_it():
    """Labelled axes, x over [0, 0.1], a grid and a legend with NME / FR / AUC per curve; many
    splits still render (line styles cycle after ten colours)."""
    curves = {f"split{k}": np.linspace(0.01, 0.05 + 0.01 * k, 20) for k in range(12)}
    ax = ced_figure(curves).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("NME", "fraction of faces")
    assert ax.get_xlim() == (0, FAILURE_THRESHOLD) and ax.get_ylim() == (0, 1)
    assert all(line.get_visible() for line in ax.xaxis.get_gridlines())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    fr, auc = fr_auc(curves["split11"])
    assert labels[11] == (f"split11: NME {100 * np.mean(curves['split11']):.2f}%, "
                          f"FR {100 * fr:.2f}%, AUC {auc:.4f}")
    assert len(labels) == 12 and 0 < fr < 1
    data = render_ced(curves, dpi=50)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)


def test_non_finite_predictions_are_evaluated_and_drawn_without_crashing():
    from pipnet_jax.evaluate import draw_predictions
    images = np.zeros((2, 32, 32, 3), np.uint8)
    gt = np.full((2, 5, 2), 0.5, np.float32)
    pred = gt.copy()
    pred[0] = np.nan
    picture = draw_predictions(images, pred, gt, columns=2)
    assert picture.shape == (32, 64, 3)
    assert picture[16, 16].tolist() == [0, 200, 0]  # the ground truth is drawn
