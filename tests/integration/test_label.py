"""`pipnet-jax label`: a trained workdir pseudo-labels a folder of face crops, shard by shard;
a rerun finds every shard done and labels nothing twice."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np

from conftest import REPO_ROOT
from test_cli import workdir  # noqa: F401  (the tiny workdir fixture)


def label(workdir, corpus, out):
    return subprocess.run([sys.executable, "-m", "pipnet_jax.cli", "label", "--config", "synthetic",
                           f"--workdir={workdir}", f"--config.label.corpus.images={corpus}",
                           f"--config.label.output={out}", "--config.label.shard_size=2",
                           "--config.label.batch_size=2"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)


def test_label_a_folder_then_rerun(workdir, tmp_path):  # noqa: F811
    corpus = tmp_path / "crops"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        cv2.imwrite(str(corpus / f"{i}.png"), rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    (corpus / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "labels"
    first = label(workdir, corpus, out)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "5 faces labeled, 1 skipped" in first.stdout and "3/3 shards" in first.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(s["count"] for s in manifest["shards"]) == 5
    assert [k["id"] for s in manifest["shards"] for k in s["skipped"]] == ["broken.jpg"]
    assert manifest["teacher"].startswith(os.path.abspath(workdir))
    again = label(workdir, corpus, out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "5 faces labeled, 1 skipped" in again.stdout
    assert json.loads((out / "manifest.json").read_text()) == manifest  # nothing labeled twice
