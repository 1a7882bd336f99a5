"""Distributed, resumable pseudo-labelling and the curriculum's round structure."""
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "support", "pseudo_label_run.py")
NUM_IMAGES = 23  # one of them unreadable


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    from pipnet_jax.data.synthetic import generate_face
    path = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for i in range(NUM_IMAGES - 1):
        cv2.imwrite(str(path / f"face_{i:03d}.jpg"), generate_face(rng, (128, 128))[0])
    (path / "face_005b.jpg").write_bytes(b"not an image")
    return str(path)


def env(devices):
    return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


def labels(out_dir):
    """{id: landmarks} over every host folder, and the summaries."""
    from pipnet_jax.data.pseudo_labels import read_shards, summary
    from pipnet_jax.stc import pass_folders
    result, summaries = {}, []
    for folder in pass_folders(out_dir):
        summaries.append(summary(folder))
        for ex in read_shards(folder, allow_partial=True).as_numpy_iterator():
            key = ex["id"].decode()
            assert key not in result, f"{key} labelled twice"
            assert ex["task"].decode() == "cls2"
            result[key] = ex["landmarks"]
    return result, summaries


@pytest.fixture(scope="module")
def one_device(corpus_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("one") / "pseudo")
    subprocess.run([sys.executable, SCRIPT, corpus_dir, out], env=env(1), check=True, cwd=ROOT, timeout=600)
    return labels(out)


def test_one_device_labels_every_readable_image_once(one_device):
    result, (s,) = one_device
    assert s["complete"] and s["total"] == NUM_IMAGES
    assert s["count"] == NUM_IMAGES - 1 and s["skipped"] == 1  # the unreadable file, reported
    assert len(result) == NUM_IMAGES - 1


@pytest.mark.multiprocess
def test_8_devices_and_2_processes_give_the_same_labels(one_device, corpus_dir, tmp_path):
    from launch.local import launch
    reference, _ = one_device
    out8 = str(tmp_path / "eight")
    subprocess.run([sys.executable, SCRIPT, corpus_dir, out8], env=env(8), check=True, cwd=ROOT, timeout=600)
    out2 = str(tmp_path / "two")
    code = launch([sys.executable, SCRIPT, corpus_dir, out2], 2, 4, str(tmp_path / "logs"), timeout=600)
    assert code == 0, open(tmp_path / "logs" / "process_1.log").read()[-3000:]
    assert sorted(os.listdir(out2)) == ["host_0_of_2", "host_1_of_2"]
    for out in (out8, out2):
        result, summaries = labels(out)
        assert result.keys() == reference.keys()
        assert sum(s["skipped"] for s in summaries) == 1
        for key, lm in result.items():
            np.testing.assert_allclose(lm, reference[key], atol=1e-5, err_msg=key)


def test_kill_midway_then_rerun_labels_everything_once(one_device, corpus_dir, tmp_path):
    out = str(tmp_path / "killed")
    proc = subprocess.Popen([sys.executable, SCRIPT, corpus_dir, out], env=env(1), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from pipnet_jax.data.pseudo_labels import Manifest
    deadline = time.time() + 600
    while True:
        assert proc.poll() is None and time.time() < deadline, "labelling ended before the kill"
        try:
            if Manifest.load(out).shards:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = len(Manifest.load(out).shards)
    assert 0 < done_at_kill < Manifest.load(out).num_shards
    subprocess.run([sys.executable, SCRIPT, corpus_dir, out], env=env(1), check=True, cwd=ROOT, timeout=600)
    result, (s,) = labels(out)
    assert s["complete"] and s["count"] + s["skipped"] == NUM_IMAGES
    reference, _ = one_device
    assert result.keys() == reference.keys()


def test_labels_of_another_teacher_are_refused_unless_relabel(corpus_dir, tmp_path):
    from pipnet_jax.data.corpus import open_corpus
    from pipnet_jax.data.pseudo_labels import ManifestMismatch
    from pipnet_jax.stc import pseudo_label

    corpus = open_corpus(corpus_dir)

    def predict(images):
        return np.full((len(images), 19, 2), 0.5, np.float32), np.ones((len(images), 19), np.float32)

    out = str(tmp_path / "p")
    pseudo_label(predict, corpus, out, "std", "teacher-A", shard_size=8, batch_size=8, log=lambda m: None)
    with pytest.raises(ManifestMismatch, match="teacher"):
        pseudo_label(predict, corpus, out, "std", "teacher-B", shard_size=8, batch_size=8)
    pseudo_label(predict, corpus, out, "std", "teacher-B", shard_size=8, batch_size=8, relabel=True,
                 log=lambda m: None)
    # confidence filtering (off by default) skips, and records why
    out2 = str(tmp_path / "q")
    pseudo_label(lambda im: (predict(im)[0], np.zeros((len(im), 19), np.float32)), corpus, out2, "std",
                 "teacher-A", shard_size=8, batch_size=8, min_confidence=0.5, log=lambda m: None)
    from pipnet_jax.data.pseudo_labels import summary
    s = summary(out2)
    assert s["count"] == 0 and s["skipped"] == NUM_IMAGES


def test_curriculum_end_to_end_and_resume(tmp_path):
    """`--mode=stc` on a tiny synthetic shift: teacher, one student and the control run; each
    round trains its own list's epochs (the student and the control: twice the teacher's
    steps); the pseudo-labels are scored against the corpus's withheld labels; a rerun skips
    every finished round."""
    import json
    workdir, data_dir = tmp_path / "w", tmp_path / "tfds"
    cmd = [sys.executable, "-m", "pipnet_jax.main", "--config", "configs/stc_synthetic.py",
           "--mode=stc", f"--workdir={workdir}", f"--config.data.data_dir={data_dir}",
           "--config.data.synthetic_train=16", "--config.data.synthetic_test=8",
           "--config.evals.main.synthetic_train=16", "--config.evals.main.synthetic_test=8",
           "--config.train.batch_size=8", "--config.train.num_epochs=1",
           "--config.stc.tasks=('std',)", "--config.stc.shard_size=8",
           "--config.stc.label_batch_size=8", "--config.eval.batch_size=8",
           "--config.data.shuffle_buffer=16", "--config.train.log_every_steps=1"]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    with open(workdir / "stc_results.json") as f:
        results = json.load(f)
    assert list(results) == ["0", "1", "control"]
    assert all(0 < r["test"]["nme"] < 10 and r["test"]["count"] == 8 for r in results.values())
    with open(workdir / "round_1" / "pseudo" / "manifest.json") as f:
        manifest = json.load(f)
    assert sum(s["count"] for s in manifest["shards"]) == 16
    quality = results["1"]["pseudo_labels"]  # the synthetic corpus's withheld labels
    assert quality["count"] == 16 and 0 < quality["nme"] < 10

    def steps(folder):
        return max(int(d) for d in os.listdir(workdir / folder / "checkpoints") if d.isdigit())

    assert (steps("round_0"), steps("round_1"), steps("control")) == (2, 4, 4)
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.count("done, skipped") == 3 and "training" not in again.stdout
