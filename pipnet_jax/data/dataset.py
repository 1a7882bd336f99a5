"""From an experiment config to a `Dataset`: everything training and evaluation need from data.

`prepare(config, workdir)` builds (or reuses) the TFDS set (generated first for the synthetic
set), reads or computes the mean face (written to <workdir>/meanface.txt), and resolves what
is evaluated: every entry of `config.evals` (built on first use). The Dataset is immutable:
a curriculum round makes its own with `with_sources` instead of changing a shared one."""
import dataclasses
import os
from typing import Optional

import jax
import numpy as np

from pipnet_jax.crops import CROP_RULES
from pipnet_jax.data import builders, datasets, pipeline
from pipnet_jax.data.datasets import RAW_LAYOUT
from pipnet_jax.errors import ConfigError
from pipnet_jax.landmarks import LandmarkSet, get_landmark_set
from pipnet_jax.meanface import compute_meanface, neighbor_indices, read_meanface, write_meanface

# The evals entry whose splits are keyed by their plain name in results.json ('test'); every
# other entry's splits are keyed '<entry>/<split>' (e.g. 'cofw68/test').
MAIN_EVAL = "main"


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """One evaluated split of a built set; `key` names it in results.json."""
    key: str
    name: str                       # built TFDS set
    split: str
    data_dir: str
    entry: str = MAIN_EVAL          # its config.evals entry

    def batches(self, batch_size: int):
        # every host evaluates the whole split (evaluation is small next to training)
        return pipeline.eval_batches(self.name, self.split, self.data_dir, batch_size,
                                     process_index=0, process_count=1)


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str                       # built TFDS set, e.g. 'pipnet_wflw', 'pipnet_300w/300w_gssl'
    data_dir: str
    train_split: str
    landmark_set: LandmarkSet
    meanface: np.ndarray
    neighbors: np.ndarray
    eval_sets: tuple                # EvalSets; the first is the main result (pictures, STC summary)
    seed: int
    augment: dict
    shuffle_buffer: int
    threads: Optional[int]
    sources: tuple = ()             # () : the labeled training split
    with_tasks: bool = False        # batches carry 'task' (curriculum rounds: the masked loss)
    epoch_steps: Optional[int] = None   # steps per epoch for the schedule; None: the sources'

    @property
    def train_sources(self) -> tuple:
        return self.sources or (self.labeled_source(),)

    def labeled_source(self, weight=None) -> pipeline.Source:
        return pipeline.Source(self.name, self.train_split, self.data_dir, task="std", weight=weight)

    def with_sources(self, sources, epoch_steps: Optional[int] = None) -> "Dataset":
        """The same set trained on `sources` (each with its task), batches with 'task'."""
        return dataclasses.replace(self, sources=tuple(sources), with_tasks=True, epoch_steps=epoch_steps)

    def steps_per_epoch(self, per_host_batch: int) -> int:
        return self.epoch_steps or pipeline.steps_per_epoch(self.train_sources, per_host_batch)

    def train_batches(self, per_host_batch: int, start_step: int = 0):
        """Augmented batches {'image', 'landmarks'[, 'task']} of this host, from start_step on."""
        keys = ("image", "landmarks") + (("task",) if self.with_tasks else ())
        batches = pipeline.train_batches(
            self.train_sources, per_host_batch, seed=self.seed, start_step=start_step,
            augment_config=self.augment, flip_permutation=self.landmark_set.flip_permutation,
            shuffle_buffer=self.shuffle_buffer, threads=self.threads)
        return ({k: b[k] for k in keys} for b in batches)

    @property
    def main_key(self) -> str:
        return self.eval_sets[0].key

    def eval_set(self, key: str) -> EvalSet:
        for ev in self.eval_sets:
            if ev.key == key:
                return ev
        raise KeyError(f"no evaluated split {key!r}; have {[e.key for e in self.eval_sets]}")

    def eval_batches(self, key: str, batch_size: int):
        return self.eval_set(key).batches(batch_size)


def ensure_built(name: str, data_dir: str, manual_dir: str, field: str, on_error: str, **options):
    """Builds 'pipnet_<key>[/<config>]' from the raw folder unless data_dir already has it;
    a missing raw folder names the config field to set."""
    builder_name, _, config_name = name.partition("/")
    key = builder_name.removeprefix("pipnet_")
    try:
        builders.builder(name, data_dir)  # already built: no raw files needed
    except FileNotFoundError:
        if not manual_dir or not os.path.isdir(manual_dir):
            raise FileNotFoundError(
                f"{field}={manual_dir!r} is not a folder: give the raw {key} data set "
                f"({RAW_LAYOUT[key]}), e.g. --config.{field}=/data/{key}") from None
        builders.build(builder_name, data_dir, manual_dir, on_error=on_error,
                       config_name=config_name or builders.DEFAULT_CONFIG, **options)


def crop_build(key: str, crop: str):
    """(built set name, build options) of data set `key` cropped with rule `crop` ('' or the
    set's own rule: its default build). Another crop is another build, kept apart as the TFDS
    config '<crop rule>', e.g. 'pipnet_300w/300w_gssl'."""
    crop = crop if crop != datasets.get(key).crop else ""
    return (f"pipnet_{key}/{crop}", {"crop": crop}) if crop else (f"pipnet_{key}", {})


def landmark_count(config) -> int:
    return get_landmark_set(config.data.landmarks).num_points


def default_data_dir(config, workdir: str) -> str:
    return config.data.data_dir or os.path.join(os.path.dirname(os.path.abspath(workdir)), "tfds")


def _labeled_set(config, data_dir: str) -> str:
    """Builds (or finds) the training set; returns its built name."""
    d = config.data
    key = d.dataset.lower()
    if key == "synthetic":
        if d.crop:
            raise ValueError(f"data.crop={d.crop!r}: the synthetic set has its own crop; leave it empty")
        builders.prepare_synthetic(data_dir, d.synthetic_train, d.synthetic_test, seed=config.seed)
        return "pipnet_synthetic"
    if key not in RAW_LAYOUT:
        raise ValueError(f"data.dataset={d.dataset!r}: expected synthetic or one of {sorted(RAW_LAYOUT)}")
    if d.crop and d.crop not in CROP_RULES:
        raise ValueError(f"data.crop={d.crop!r}: expected '' or one of {CROP_RULES}")
    name, options = crop_build(key, d.crop)
    ensure_built(name, data_dir, d.manual_dir, "data.manual_dir", d.on_error, **options)
    return name


def eval_entry(entry: str, spec) -> tuple[str, dict, str, tuple, str]:
    """One config.evals entry read: (its field name, the spec as a dict, data set (lower case,
    '' = the training set), splits, synthetic style)."""
    field, spec = f"evals.{entry}", dict(spec)
    splits = spec.get("splits", ("test",))
    splits = (splits,) if isinstance(splits, str) else tuple(splits)
    if not splits:
        raise ConfigError(f"{field}.splits is empty: name the splits to evaluate, e.g. ('test',)")
    return field, spec, str(spec.get("dataset", "")).lower(), splits, spec.get("synthetic_style", "")


def _eval_sets(entry: str, spec, config, name: str, data_dir: str, landmark_set) -> list:
    """The EvalSets of one config.evals entry: its data set ('' = the training set, 'synthetic'
    with a style = a generated set of that style, or a raw data set built on first use from
    its manual_dir) and splits."""
    field, spec, dataset, splits, style = eval_entry(entry, spec)
    if dataset == "synthetic" and style:  # e.g. the STC target domain: another generated style
        data_dir = f"{data_dir}_style_{style}"
        builders.prepare_synthetic(data_dir, spec.get("synthetic_train", 0), spec.get("synthetic_test", 0),
                                   seed=config.seed + 1, style=style)
        name = "pipnet_synthetic"
    elif dataset not in ("", config.data.dataset.lower()):
        if dataset not in RAW_LAYOUT or dataset == "custom":
            raise ValueError(f"{field}.dataset={dataset!r}: expected '' (the training set), 'synthetic' "
                             f"with a synthetic_style, or one of {sorted(set(RAW_LAYOUT) - {'custom'})}")
        name = f"pipnet_{dataset}"
        if spec.get("manual_dir") is not None:
            ensure_built(name, data_dir, spec["manual_dir"], f"{field}.manual_dir", config.data.on_error)
        info = builders.builder(name, data_dir).info  # other sets: built beforehand (builders CLI)
        if info.metadata["num_points"] != landmark_set.num_points:
            raise ValueError(f"{field}: {name} has {info.metadata['num_points']} points, the landmark "
                             f"set {landmark_set.name!r} {landmark_set.num_points}")
    available = builders.builder(name, data_dir).info.splits
    for split in splits:
        if split not in available:
            raise ValueError(f"{field}.splits: {name} has no split {split!r}; it has {sorted(available)}")
    return [EvalSet(split if entry == MAIN_EVAL else f"{entry}/{split}", name, split, data_dir, entry)
            for split in splits]


def prepare(config, workdir: str) -> Dataset:
    """Builds (or reuses) the data sets and the mean face; writes <workdir>/meanface.txt."""
    d = config.data
    data_dir = default_data_dir(config, workdir)
    name = _labeled_set(config, data_dir)
    landmark_set = get_landmark_set(d.landmarks)

    path = os.path.join(workdir, "meanface.txt")
    if d.meanface_file:
        meanface = read_meanface(d.meanface_file)
    elif os.path.exists(path):  # a resumed run keeps the mean face it started with
        meanface = read_meanface(path)
    else:
        landmarks = [ex["landmarks"] for ex in
                     builders.load(name, d.train_split, data_dir, decode=False).as_numpy_iterator()]
        meanface = compute_meanface(np.stack(landmarks).astype(np.float64))
    if meanface.shape != (landmark_set.num_points, 2):
        raise ValueError(f"mean face has {meanface.shape[0]} points; landmark set "
                         f"{landmark_set.name!r} has {landmark_set.num_points}")
    if jax.process_index() == 0 and not os.path.exists(path):
        os.makedirs(workdir, exist_ok=True)
        write_meanface(path, meanface)
    if not len(config.evals):
        raise ValueError("config.evals is empty: give at least one evaluated set, e.g. "
                         "evals.main = dict(splits=('test',))")
    # 'main' first, then the other entries by name (a ConfigDict keeps no order)
    entries = sorted(config.evals.keys(), key=lambda e: (e != MAIN_EVAL, e))
    eval_sets = [ev for entry in entries
                 for ev in _eval_sets(entry, config.evals[entry], config, name, data_dir, landmark_set)]
    return Dataset(name, data_dir, d.train_split, landmark_set, meanface,
                   neighbor_indices(meanface, config.model.num_neighbors), tuple(eval_sets),
                   seed=config.seed, augment=config.augment.to_dict(),
                   shuffle_buffer=d.shuffle_buffer, threads=d.threads or None)
