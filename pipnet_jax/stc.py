"""Self-training with curriculum (spec 16): a teacher on the labeled set, then rounds that
pseudo-label an unlabeled corpus with the latest model and train a fresh student on labeled
('std') + pseudo-labeled samples tagged with the round's task.

    <workdir>/round_0/                 teacher (labeled set only)
    <workdir>/round_k/pseudo/          pseudo-labels made by round k-1's model (TFRecord shards
                                       + manifest; host_<i>_of_<n>/ per process when several)
    <workdir>/round_k/                 student k: checkpoints, results.json, ...
    <workdir>/control/                 (stc.control) labeled faces only, the last student's
                                       schedule
    <workdir>/stc_results.json         target-domain NME per round

A killed run resumes where it stopped: finished rounds (results.json present) are skipped, a
round's pseudo-labelling skips its finished shards, and training resumes from the round's
latest checkpoint."""
import hashlib
import json
import os
import shutil
from typing import Optional

import jax
import numpy as np

from pipnet_jax import parallel
from pipnet_jax.checkpoint import load_variables, write_json_atomic


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
    from tqdm import tqdm

    from pipnet_jax.data.corpus import CorpusError
    from pipnet_jax.data.pseudo_labels import Manifest

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
        for start in range(0, len(images), batch_size):
            chunk = np.stack(images[start:start + batch_size])
            pad = batch_size - len(chunk)  # fixed batch shape: one compile
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], np.uint8)])
            landmarks, confidence = predict(chunk)
            for j in range(batch_size - pad):
                i = start + j
                if min_confidence is not None and float(confidence[j].mean()) < min_confidence:
                    skipped.append({"id": ids[i], "reason": f"mean confidence {confidence[j].mean():.3f} "
                                                            f"< {min_confidence}"})
                    continue
                examples.append({"id": ids[i], "image": images[i], "task": task,
                                 "landmarks": np.asarray(landmarks[j], np.float32),
                                 "confidence": np.asarray(confidence[j], np.float32)})
        manifest.write(k, examples, skipped)
    return [directory]


def make_sharded_predict(model, variables, neighbors, input_size: int):
    """predict(images) on this process's local devices: the batch is split over them."""
    from jax.sharding import Mesh

    from pipnet_jax.train import make_predict_fn

    mesh = Mesh(np.asarray(jax.local_devices()), ("data",))
    fn = make_predict_fn(model, neighbors, input_size)
    variables = jax.device_put(jax.device_get(variables), parallel.replicated(mesh))
    sharding = parallel.batch_sharding(mesh)

    def predict(images):
        if len(images) % mesh.devices.size:
            raise ValueError(f"pseudo-label batch {len(images)} must be a multiple of the "
                             f"{mesh.devices.size} local devices")
        return jax.device_get(fn(variables, jax.device_put(images, sharding)))

    return predict


def pass_folders(out_dir: str) -> list[str]:
    """The manifest folders of one labelling pass: out_dir itself, or its host_<i>_of_<n>."""
    if os.path.exists(os.path.join(out_dir, "manifest.json")):
        return [out_dir]
    return sorted(os.path.join(out_dir, d) for d in os.listdir(out_dir) if d.startswith("host_"))


def pseudo_label_sources(out_dir: str, task: str, weight=None):
    """pipeline Sources of every host folder of a finished pass."""
    from pipnet_jax.data.pseudo_labels import Manifest, as_source

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
    from pipnet_jax.data import builders
    from pipnet_jax.data.pseudo_labels import read_shards
    from pipnet_jax.evaluate import split_metrics

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


def run_stc(config, workdir: str) -> dict:
    """The whole curriculum; returns {round: results} (also <workdir>/stc_results.json)."""
    from pipnet_jax.data import experiment_data
    from pipnet_jax.data.corpus import open_corpus
    from pipnet_jax.data.pipeline import Source
    from pipnet_jax.train import build_model, train_and_evaluate

    parallel.initialize_distributed()
    s = config.stc
    data = experiment_data.prepare(config, os.path.join(workdir, "round_0"))
    corpus_spec = s.corpus.to_dict()
    if s.target_synthetic_style:  # the synthetic domain-shift experiment: a second style
        from pipnet_jax.data import builders, synthetic
        if s.target_synthetic_style not in synthetic.STYLES:
            raise ValueError(f"stc.target_synthetic_style={s.target_synthetic_style!r}: expected one "
                             f"of {sorted(synthetic.STYLES)}")
        target_dir = data.data_dir + f"_style_{s.target_synthetic_style}"
        builders.prepare_synthetic(target_dir, s.target_synthetic_train, s.target_synthetic_test,
                                   seed=config.seed + 1, style=s.target_synthetic_style)
        data.eval_name, data.eval_data_dir = "pipnet_synthetic", target_dir
        corpus_spec = {"tfds": "pipnet_synthetic", "split": "train", "data_dir": target_dir}
    corpus_spec = experiment_data.prepare_corpus(corpus_spec, data.data_dir, config.data.on_error)
    corpus = open_corpus(corpus_spec)
    labeled = [Source(data.name, config.data.train_split, data.data_dir, task="std",
                      weight=s.labeled_weight or None)]
    summary_path = os.path.join(workdir, "stc_results.json")
    rounds = {}

    def open_round(key, round_dir):
        """The results of a finished round (then skipped), else None; every round folder is a
        complete workdir (Predictor.from_workdir, --mode=eval)."""
        os.makedirs(round_dir, exist_ok=True)
        if key != 0:
            shutil.copyfile(os.path.join(workdir, "round_0", "meanface.txt"),
                            os.path.join(round_dir, "meanface.txt"))
        path = os.path.join(round_dir, "results.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    def record(key, task, results):
        if "preempted_at_step" in results:  # SIGTERM/SIGINT: checkpoint saved, stop here
            raise SystemExit(f"STC stopped in {key}; rerun the same command to resume")
        rounds[key] = {"task": task, **results}
        if jax.process_index() == 0:
            write_json_atomic(summary_path, {str(r): v for r, v in rounds.items()})

    sources = labeled
    for k, task in enumerate(["std"] + list(s.tasks)):
        round_dir = os.path.join(workdir, f"round_{k}")
        initial = quality = None
        if k > 0:
            teacher_dir = os.path.join(workdir, f"round_{k - 1}")
            pseudo_dir = os.path.join(round_dir, "pseudo")
            if not os.path.exists(os.path.join(round_dir, "results.json")):
                variables, _ = load_variables(teacher_dir)
                model = build_model(config, data.landmark_set.num_points)
                predict = make_sharded_predict(model, variables, data.neighbors, config.model.input_size)
                pseudo_label(predict, corpus, pseudo_dir, task, teacher_id(teacher_dir),
                             shard_size=s.shard_size, batch_size=s.label_batch_size,
                             relabel=s.relabel, min_confidence=s.min_confidence or None)
                if s.warm_start:
                    initial = variables
            sources = labeled + pseudo_label_sources(pseudo_dir, task, weight=s.pseudo_weight or None)
            quality = pseudo_label_quality(pseudo_dir, corpus_spec, data.landmark_set)
            if quality:
                print(f"round {k}: pseudo-labels against the corpus's withheld labels: NME "
                      f"{100 * quality['nme']:.2f}% ({quality['count']} faces)")
        results = open_round(k, round_dir)
        if results is None:
            print(f"round {k} ({task}): training {'the teacher' if k == 0 else 'a student'}")
            results = train_and_evaluate(config, round_dir, data=data, sources=sources, stc=True,
                                         initial_variables=initial)
        else:
            print(f"round {k} ({task}): done, skipped")
        record(k, task, {**results, "pseudo_labels": quality} if k and quality else results)
    if s.control and s.tasks:
        # Labeled faces only, on the last student's schedule (its steps per epoch): separates
        # the pseudo-labels' effect from the students' longer rounds.
        control_dir = os.path.join(workdir, "control")
        results = open_round("control", control_dir)
        if results is None:
            print("control: training on the labeled set only, with the last student's schedule")
            epoch_steps = data.steps_per_epoch(
                parallel.check_batch_size(config.train.batch_size, parallel.make_mesh()), sources)
            results = train_and_evaluate(config, control_dir, data=data, sources=labeled, stc=True,
                                         epoch_steps=epoch_steps)
        else:
            print("control: done, skipped")
        record("control", "std", results)
    if jax.process_index() == 0:
        split = data.eval_splits[0]
        print("STC: target-domain NME per round (" + split + ")")
        for r, v in rounds.items():
            name = "control (labeled only)" if r == "control" else f"round {r} ({v['task']})"
            print(f"  {name}: {100 * v[split]['nme']:.2f}%")
    return rounds
