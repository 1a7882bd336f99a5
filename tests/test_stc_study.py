"""`--mode=stc_study` with configs/stc_scarce.py at a tiny size: the teacher, a curriculum
student and two ablation ('std') students from the same teacher (concatenated, weighted), students on the teacher's steps
(stc.schedule='steps'), learning curves, the summary table, and a rerun that trains nothing."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_study_tiny(tmp_path):
    workdir = tmp_path / "study"
    cmd = [sys.executable, "-m", "pipnet_jax.main", "--config", "configs/stc_scarce.py",
           "--mode=stc_study", f"--workdir={workdir}",
           "--config.data.synthetic_train=16", "--config.data.synthetic_test=8",
           "--config.evals.main.synthetic_train=16", "--config.evals.main.synthetic_test=8",
           "--config.train.batch_size=8", "--config.train.num_epochs=1", "--config.train.decay_epochs=()",
           "--config.train.eval_every_steps=1", "--config.train.checkpoint_every_steps=100",
           "--config.stc.tasks=('cls2',)", "--config.study.ablation_tasks=('std',)",
           "--config.study.seeds=(0,)", "--config.stc.shard_size=8", "--config.stc.label_batch_size=8",
           "--config.eval.batch_size=8", "--config.data.shuffle_buffer=16"]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    summary = json.load(open(workdir / "study.json"))
    runs = {r["run"]: r for r in summary["runs"]}
    assert list(runs) == ["teacher (= labeled-only control)", "curriculum round 1 (final)",
                          "std_only round 1 (final)", "std_weighted round 1 (final)"]
    assert [r["task"] for r in runs.values()] == ["std", "cls2", "std", "std"]
    for r in runs.values():
        assert 0 < r["nme"] < 10 and r["curve_tail"][-1][0] == 2  # curve points up to step 2
    # both students from one teacher, whose pseudo-labels (the same network) score the same
    assert runs["curriculum round 1 (final)"]["pseudo_label_nme"] == runs["std_only round 1 (final)"]["pseudo_label_nme"]
    seed = workdir / "seed_0"
    teacher = json.load(open(seed / "curriculum" / "round_0" / "results.json"))
    assert json.load(open(seed / "std_only" / "round_0" / "results.json")) == teacher

    def steps(arm, round_):
        folder = seed / arm / f"round_{round_}" / "checkpoints"
        return max(int(d) for d in os.listdir(folder) if d.isdigit())

    # 16 labeled + 16 pseudo-labeled faces, but the teacher's 2 steps (stc.schedule='steps')
    assert steps("curriculum", 0) == steps("curriculum", 1) == steps("std_only", 1) == 2
    assert steps("std_weighted", 1) == 2
    # the same teacher, pseudo-labels and steps: only the batches' mix differs, and it tells
    assert runs["std_weighted round 1 (final)"]["nme"] != runs["std_only round 1 (final)"]["nme"]
    curve = open(seed / "curriculum" / "round_1" / "eval_curve.csv").read().splitlines()
    assert curve[0] == "step,split,nme,fr,auc" and [line.split(",")[0] for line in curve[1:]] == ["0", "1", "2"]
    assert "| teacher (= labeled-only control) | 1 |" in open(workdir / "study.md").read()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert again.stdout.count("done, skipped") == 6 and "training" not in again.stdout
