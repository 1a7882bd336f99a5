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
import json
import os
import shutil

import jax

from pipnet_jax import parallel
from pipnet_jax.data import dataset as dataset_lib
from pipnet_jax.evaluate import PROVENANCE_KEY
from pipnet_jax.experiment import build_model, run_training
from pipnet_jax.files import write_json_atomic
from pipnet_jax.inference import make_sharded_predict
from pipnet_jax.stc.corpus_spec import open_corpus, prepare_corpus
from pipnet_jax.stc.labelling import (pseudo_label, pseudo_label_quality, pseudo_label_sources,
                                      teacher_id)
from pipnet_jax.workdir import load_model, run_lock


class Preempted(SystemExit):
    """SIGTERM/SIGINT during a round: its checkpoint is saved; rerun the command to resume."""


def corpus_spec_of(config, dataset) -> dict:
    """stc.corpus as an open_corpus spec. stc.corpus.from_eval names a config.evals entry whose
    built set's stc.corpus.split is the corpus (a labeled set used as if unlabeled, e.g. the
    synthetic target domain; its labels only score the pseudo-labels)."""
    spec = config.stc.corpus.to_dict()
    entry = spec.get("from_eval")
    if entry:
        sets = [ev for ev in dataset.eval_sets if ev.entry == entry]
        if not sets:
            raise ValueError(f"stc.corpus.from_eval={entry!r}: no such config.evals entry "
                             f"(have {sorted({ev.entry for ev in dataset.eval_sets})})")
        return {"tfds": sets[0].name, "split": spec.get("split") or "train", "data_dir": sets[0].data_dir}
    return prepare_corpus(spec, dataset.data_dir, config.data.on_error)


def run_stc(config, workdir: str) -> dict:
    """The whole curriculum; returns {round: results} (also <workdir>/stc_results.json)."""
    parallel.initialize_distributed()
    with run_lock(workdir):
        return _run_rounds(config, workdir)


def _run_rounds(config, workdir: str) -> dict:
    s = config.stc
    labeled_data = dataset_lib.prepare(config, os.path.join(workdir, "round_0"))
    corpus_spec = corpus_spec_of(config, labeled_data)
    corpus = open_corpus(corpus_spec)
    labeled = [labeled_data.labeled_source(weight=s.labeled_weight or None)]
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
            results = json.load(f)
        results.pop(PROVENANCE_KEY, None)  # stc_results.json: the metrics only
        return results

    def train_round(round_dir, dataset, initial=None):
        result = run_training(config, round_dir, dataset, stc=True, initial_variables=initial)
        if result.preempted:  # SIGTERM/SIGINT: checkpoint saved, stop here
            raise Preempted(f"STC stopped in {round_dir}; rerun the same command to resume")
        return result.results

    def record(key, task, results):
        rounds[key] = {"task": task, **results}
        if jax.process_index() == 0:
            write_json_atomic(summary_path, {str(r): v for r, v in rounds.items()})

    sources = labeled
    per_host = parallel.check_batch_size(config.train.batch_size, parallel.make_mesh())
    # stc.schedule 'steps': every student gets the teacher's epoch length, so the same steps
    # and decays (equal compute); 'epochs': its own list's epochs (the original)
    student_epoch = labeled_data.steps_per_epoch(per_host) if s.schedule == "steps" else None
    for k, task in enumerate(["std"] + list(s.tasks)):
        round_dir = os.path.join(workdir, f"round_{k}")
        initial = quality = None
        if k > 0:
            teacher_dir = os.path.join(workdir, f"round_{k - 1}")
            pseudo_dir = os.path.join(round_dir, "pseudo")
            if not os.path.exists(os.path.join(round_dir, "results.json")):
                teacher = load_model(teacher_dir)
                model = build_model(config, labeled_data.landmark_set.num_points)
                predict = make_sharded_predict(model, teacher.variables, labeled_data.neighbors,
                                               config.model.input_size)
                pseudo_label(predict, corpus, pseudo_dir, task, teacher_id(teacher_dir),
                             shard_size=s.shard_size, batch_size=s.label_batch_size,
                             relabel=s.relabel, min_confidence=s.min_confidence or None)
                if s.warm_start:
                    initial = teacher.variables
            sources = labeled + pseudo_label_sources(pseudo_dir, task, weight=s.pseudo_weight or None)
            quality = pseudo_label_quality(pseudo_dir, corpus_spec, labeled_data.landmark_set)
            if quality:
                print(f"round {k}: pseudo-labels against the corpus's withheld labels: NME "
                      f"{100 * quality['nme']:.2f}% ({quality['count']} faces)")
        results = open_round(k, round_dir)
        if results is None:
            print(f"round {k} ({task}): training {'the teacher' if k == 0 else 'a student'}")
            results = train_round(round_dir, labeled_data.with_sources(sources, k and student_epoch or None),
                                  initial)
        else:
            print(f"round {k} ({task}): done, skipped")
        record(k, task, {**results, "pseudo_labels": quality} if k and quality else results)
    if s.control and s.tasks and s.schedule == "steps":
        print("control: with stc.schedule='steps' a student trains the teacher's steps, so the "
              "labeled-only control is the teacher (round 0)")
    elif s.control and s.tasks:
        # Labeled faces only, on the last student's schedule (its steps per epoch): separates
        # the pseudo-labels' effect from the students' longer rounds.
        control_dir = os.path.join(workdir, "control")
        results = open_round("control", control_dir)
        if results is None:
            print("control: training on the labeled set only, with the last student's schedule")
            epoch_steps = labeled_data.with_sources(sources).steps_per_epoch(per_host)
            results = train_round(control_dir, labeled_data.with_sources(labeled, epoch_steps))
        else:
            print("control: done, skipped")
        record("control", "std", results)
    if jax.process_index() == 0:
        key = labeled_data.main_key
        print(f"STC: target-domain NME per round ({key})")
        for r, v in rounds.items():
            name = "control (labeled only)" if r == "control" else f"round {r} ({v['task']})"
            print(f"  {name}: {100 * v[key]['nme']:.2f}%")
    return rounds
