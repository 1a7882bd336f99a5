"""--mode=stc_study: STC against its baselines, over seeds, in one resumable command.

    <workdir>/seed_<s>/tfds          the seed's data (a seed draws its own synthetic faces too)
    <workdir>/seed_<s>/curriculum/   run_stc with stc.tasks: teacher (round_0), students
    <workdir>/seed_<s>/std_only/     (study.ablation_seeds) run_stc with study.ablation_tasks,
                                     from the same teacher (round_0 copied, not retrained)
    <workdir>/seed_<s>/std_weighted/ (study.weighted_seeds) the same rounds, but every batch
                                     drawn labeled : pseudo-labeled = study.weights (stc.
                                     labeled_weight / pseudo_weight), from the same teacher
    <workdir>/study.json, study.md   every run's target-domain NME / FR / AUC, the pseudo-labels'
                                     NME, the last learning-curve points, and the mean and spread
                                     over seeds

With stc.schedule='steps' every student trains the teacher's steps, so the teacher is also the
labeled-only control of equal steps. Each run is an STC workdir: a killed study resumes
where it stopped (finished rounds are skipped)."""
import json
import os
import shutil

import jax
import numpy as np

from pipnet_jax.evaluate import CURVE_FILE, read_curve
from pipnet_jax.files import atomic_write_text, write_json_atomic
from pipnet_jax.stc.rounds import run_stc

ARMS = ("curriculum", "std_only", "std_weighted")


def arm_config(config, seed: int, arm: str, workdir: str):
    c = config.copy_and_resolve_references()
    c.seed = seed
    c.data.data_dir = config.data.data_dir or os.path.join(workdir, f"seed_{seed}", "tfds")
    if arm in ("std_only", "std_weighted"):
        c.stc.tasks = tuple(config.study.ablation_tasks)
    if arm == "std_weighted":
        c.stc.labeled_weight, c.stc.pseudo_weight = map(float, config.study.weights)
    return c


def copy_teacher(source: str, target: str) -> None:
    """The curriculum arm's finished round_0 into the ablation arm (copied to a temporary name,
    then renamed: a killed copy is redone, never taken for a teacher)."""
    done = os.path.join(target, "round_0")
    if os.path.exists(os.path.join(done, "results.json")):
        return
    tmp = done + ".copying"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(os.path.join(source, "round_0"), tmp)
    shutil.rmtree(done, ignore_errors=True)  # an unfinished copy of an earlier attempt
    os.replace(tmp, done)


def curve_tail(run_dir: str, key: str, points: int = 3) -> list:
    """The last learning-curve points [(step, NME)] of split `key` (train.eval_every_steps)."""
    path = os.path.join(run_dir, CURVE_FILE)
    if not os.path.exists(path):
        return []
    rows = [r for r in read_curve(path) if r["split"] == key]
    return [(r["step"], r["nme"]) for r in rows[-points:]]


def summarize(config, workdir: str) -> dict:
    """{'runs': [one row per trained model], 'spread': {run name: mean/std/min/max NME}}."""
    rows = []
    for seed in config.study.seeds:
        for arm in ARMS:
            arm_dir = os.path.join(workdir, f"seed_{seed}", arm)
            path = os.path.join(arm_dir, "stc_results.json")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                rounds = json.load(f)
            key = next(k for k in rounds["0"] if isinstance(rounds["0"][k], dict))
            for r, v in rounds.items():
                if arm != "curriculum" and r == "0":
                    continue  # the same teacher as the curriculum arm's
                last = r == str(len(rounds) - 1 - ("control" in rounds))
                name = ("teacher (= labeled-only control)" if r == "0" else
                        f"{arm} round {r}{' (final)' if last else ''}")
                quality = v.get("pseudo_labels") or {}
                rows.append({"run": name, "seed": seed, "task": v["task"], "nme": v[key]["nme"],
                             "fr": v[key]["fr"], "auc": v[key]["auc"],
                             "pseudo_label_nme": quality.get("nme"),
                             "curve_tail": curve_tail(os.path.join(arm_dir, f"round_{r}"), key)})
    spread = {}
    for name in dict.fromkeys(r["run"] for r in rows):
        nmes = np.array([r["nme"] for r in rows if r["run"] == name])
        spread[name] = {"seeds": len(nmes), "mean": float(nmes.mean()), "std": float(nmes.std()),
                        "min": float(nmes.min()), "max": float(nmes.max())}
    return {"runs": rows, "spread": spread}


def markdown(summary: dict) -> str:
    lines = ["| run | seed | task | test NME % | FR@0.1 % | AUC@0.1 | pseudo-labels' NME % | last curve points (step: NME %) |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for r in summary["runs"]:
        pl = "" if r["pseudo_label_nme"] is None else f"{100 * r['pseudo_label_nme']:.2f}"
        tail = ", ".join(f"{s}: {100 * e:.2f}" for s, e in r["curve_tail"])
        lines.append(f"| {r['run']} | {r['seed']} | {r['task']} | {100 * r['nme']:.2f} | "
                     f"{100 * r['fr']:.1f} | {r['auc']:.4f} | {pl} | {tail} |")
    lines += ["", "| run | seeds | mean NME % | std | min | max |", "|---|---:|---:|---:|---:|---:|"]
    for name, s in summary["spread"].items():
        lines.append(f"| {name} | {s['seeds']} | {100 * s['mean']:.2f} | {100 * s['std']:.2f} | "
                     f"{100 * s['min']:.2f} | {100 * s['max']:.2f} |")
    return "\n".join(lines) + "\n"


def run_study(config, workdir: str) -> dict:
    """Every seed's curriculum arm, the ablation arms for their seeds, then the summary."""
    if "study" not in config:
        raise ValueError("--mode=stc_study needs a config with a `study` section "
                         "(configs/stc_scarce.py)")
    for seed in config.study.seeds:
        curriculum = os.path.join(workdir, f"seed_{seed}", "curriculum")
        print(f"study: seed {seed}, curriculum {tuple(config.stc.tasks)}")
        run_stc(arm_config(config, seed, "curriculum", workdir), curriculum)
        for arm, seeds in (("std_only", config.study.ablation_seeds),
                           ("std_weighted", config.study.weighted_seeds)):
            if seed not in seeds:
                continue
            arm_dir = os.path.join(workdir, f"seed_{seed}", arm)
            print(f"study: seed {seed}, {arm} {tuple(config.study.ablation_tasks)}")
            if jax.process_index() == 0:
                copy_teacher(curriculum, arm_dir)
            run_stc(arm_config(config, seed, arm, workdir), arm_dir)
    summary = summarize(config, workdir)
    if jax.process_index() == 0:
        write_json_atomic(os.path.join(workdir, "study.json"), summary)
        atomic_write_text(os.path.join(workdir, "study.md"), markdown(summary))
        print(markdown(summary))
    return summary
