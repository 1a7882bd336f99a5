"""Pseudo-labelling a corpus with a teacher (spec 16): sharded over processes, resumable shard
by shard, recorded in a manifest that names the teacher; the sources a student trains on; the
pseudo-labels' quality against a corpus's withheld labels (a diagnostic)."""
import hashlib
import os
from typing import Optional

import jax
import numpy as np
from tqdm import tqdm

from pipnet_jax import parallel
from pipnet_jax.checkpoint import load_variables
from pipnet_jax.data import builders
from pipnet_jax.data.corpus import CorpusError
from pipnet_jax.data.dataset import default_data_dir
from pipnet_jax.data.pseudo_labels import Manifest, as_source, read_shards, summary
from pipnet_jax.errors import ConfigError
from pipnet_jax.evaluate import split_metrics
from pipnet_jax.inference import make_sharded_predict, predict_in_batches
from pipnet_jax.stc.corpus_spec import open_corpus, prepare_corpus
from pipnet_jax.workdir import load_model, run_lock


def teacher_id(workdir: str) -> str:
    """Names the model that made a set of pseudo-labels: its checkpoint and a parameter hash."""
    variables, step = load_variables(workdir)
    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(variables):
        h.update(np.asarray(leaf).tobytes())
    return f"{os.path.abspath(workdir)}@{step}:{h.hexdigest()[:16]}"


def host_directory(out_dir: str, process_index: int, process_count: int) -> str:
    """Each process writes the shards k with k % process_count == process_index into its own
    folder (one writer per manifest)."""
    if process_count == 1:
        return out_dir
    return os.path.join(out_dir, f"host_{process_index}_of_{process_count}")


def pseudo_label(predict, corpus, out_dir: str, task: str, teacher: str, *, shard_size: int = 256,
                 batch_size: int = 32, relabel: bool = False, min_confidence: Optional[float] = None,
                 process_index: Optional[int] = None, process_count: Optional[int] = None,
                 log=print) -> list[str]:
    """Labels every corpus item once with `predict` (uint8 (B, 256, 256, 3) -> (landmarks
    [0, 1] (B, N, 2), confidence (B, N)) as numpy), shard by shard; returns the host folders.

    Unreadable images are reported and skipped (recorded in the manifest), never lose the
    shard. min_confidence (off by default, as the original): faces whose mean confidence is
    lower are skipped with that reason."""
    pi = jax.process_index() if process_index is None else process_index
    pc = jax.process_count() if process_count is None else process_count
    directory = host_directory(out_dir, pi, pc)
    manifest = Manifest.open(directory, teacher, corpus.description, shard_size, len(corpus), relabel)
    mine = [k for k in range(corpus.num_shards(shard_size)) if k % pc == pi and not manifest.is_done(k)]
    for k in tqdm(mine, desc=f"pseudo-label ({task})", unit="shard", disable=pi != 0 or not mine):
        images, ids, skipped = [], [], []
        for item in corpus.shard_items(k, shard_size):
            try:
                images.append(corpus.load(item))
                ids.append(item.id)
            except CorpusError as e:
                log(f"skipped {item.id}: {e}")
                skipped.append({"id": item.id, "reason": str(e)})
        examples = []
        if images:
            landmarks, confidence = predict_in_batches(predict, np.stack(images), batch_size, 0)
        for i, ident in enumerate(ids):
            if min_confidence is not None and float(confidence[i].mean()) < min_confidence:
                skipped.append({"id": ident, "reason": f"mean confidence {confidence[i].mean():.3f} "
                                                       f"< {min_confidence}"})
                continue
            examples.append({"id": ident, "image": images[i], "task": task,
                             "landmarks": np.asarray(landmarks[i], np.float32),
                             "confidence": np.asarray(confidence[i], np.float32)})
        manifest.write(k, examples, skipped)
    return [directory]


def pass_folders(out_dir: str) -> list[str]:
    """The manifest folders of one labelling pass: out_dir itself, or its host_<i>_of_<n>."""
    if os.path.exists(os.path.join(out_dir, "manifest.json")):
        return [out_dir]
    return sorted(os.path.join(out_dir, d) for d in os.listdir(out_dir) if d.startswith("host_"))


def pseudo_label_sources(out_dir: str, task: str, weight=None):
    """pipeline Sources of every host folder of a finished pass."""
    folders = pass_folders(out_dir)
    sources, done, total = [], set(), None
    for folder in folders:
        m = Manifest.load(folder)
        done |= set(m.shards)
        total = m.num_shards
        sources.append(as_source(folder, task=task, weight=weight, allow_partial=True))
    if total is None or len(done) != total:
        raise RuntimeError(f"pseudo-labelling in {out_dir} is unfinished ({len(done)}/{total} shards)")
    return sources


def pseudo_label_quality(out_dir: str, corpus_spec: dict, landmark_set) -> Optional[dict]:
    """NME / FR / AUC of a finished pass against the corpus's own labels, when the corpus is a
    built labeled set used as if unlabeled (the synthetic experiment, or a held-back split);
    None for unlabeled corpora. A diagnostic only: the labels never reach training."""
    if "tfds" not in corpus_spec or not str(corpus_spec["tfds"]).startswith("pipnet_"):
        return None
    truth = {ex["image_id"].decode(): ex["landmarks"] for ex in builders.load(
        corpus_spec["tfds"], corpus_spec.get("split", "train"), corpus_spec.get("data_dir"),
        decode=False).as_numpy_iterator()}
    folders = pass_folders(out_dir)
    pred, gt = [], []
    for folder in folders:
        for ex in read_shards(folder, allow_partial=True).as_numpy_iterator():
            pred.append(ex["landmarks"])
            gt.append(truth[ex["id"].decode()])
    if not pred:
        return None
    result = split_metrics(np.stack(pred), np.stack(gt), landmark_set)
    result.pop("nmes")
    return result


def run_label(config, workdir: str) -> dict:
    """--mode=label: pseudo-labels config.label.corpus with the workdir's trained model, as one
    STC pass (sharded over processes, resumable shard by shard, a manifest naming the model);
    without training anything. Returns the pass's summary (summary() of each host folder)."""
    parallel.initialize_distributed()
    lab = config.label
    spec = prepare_corpus(lab.corpus.to_dict(), default_data_dir(config, workdir), config.data.on_error)
    if not spec:
        raise ConfigError("label.corpus is empty: give --config.label.corpus.images=DIR (face crops), "
                          "images + detect=faceboxes (whole pictures), boxes + images, or tfds")
    loaded = load_model(workdir)
    corpus = open_corpus(spec)
    predict = make_sharded_predict(loaded.model, loaded.variables, loaded.neighbors, loaded.input_size)
    out = lab.output or os.path.join(workdir, "labels")
    with run_lock(out):  # one labelling pass per output folder
        folders = pseudo_label(predict, corpus, out, lab.task, teacher_id(workdir),
                               shard_size=lab.shard_size, batch_size=lab.batch_size,
                               relabel=lab.relabel, min_confidence=lab.min_confidence or None)
    totals = {folder: summary(folder) for folder in folders}
    if jax.process_index() == 0:
        for folder, t in totals.items():
            print(f"{folder}: {t['count']} faces labeled, {t['skipped']} skipped (reasons in its "
                  f"manifest.json), {t['shards_done']}/{t['num_shards']} shards")
    return totals

