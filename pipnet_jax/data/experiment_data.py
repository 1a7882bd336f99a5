"""From an experiment config to everything the training loop needs from data: the built TFDS
set (generated first for the synthetic set), the landmark set, the mean face and neighbor
table, the train / eval batch iterators, the cross-domain eval sets (eval.cross_domain), and
the STC corpus spec (stc.corpus: raw sets built on first use, see prepare_corpus)."""
import dataclasses
import os

import numpy as np

from pipnet_jax.data import annotations, builders, corpus, pipeline
from pipnet_jax.landmarks import LandmarkSet, get_landmark_set
from pipnet_jax.meanface import compute_meanface, neighbor_indices, read_meanface, write_meanface

# What each raw data set folder must contain, for the error when it is missing.
RAW_LAYOUT = {"wflw": "WFLW_images/ and WFLW_annotations/", "300w": "afw/ helen/ lfpw/ ibug/ with .pts",
              "cofw": "COFW_train_color.mat and COFW_test_color.mat", "aflw": "AFLWinfo_release.mat and images",
              "lapa": "train/ val/ test/ with images/ and landmarks/", "custom": "images and annotations",
              "wflw68": "WFLW_images/ and WFLW_annotations/ (the WFLW test faces, converted to 68 points)",
              "cofw68": "COFW_test_color.mat, cofw68_test_bboxes.mat and cofw68_test_annotations/"}
# stc.corpus fields shared with --mode=predict's detector (configs/common.py).
DETECTOR_FIELDS = ("faceboxes_weights", "score_threshold")


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """One evaluated split; `key` names it in results.json: the split for the main set,
    '<dataset>/<split>' for a cross-domain set (e.g. 'cofw68/test')."""
    key: str
    name: str                       # built TFDS set
    split: str
    data_dir: str

    def batches(self, batch_size: int):
        # every host evaluates the whole split (evaluation is small next to training)
        return pipeline.eval_batches(self.name, self.split, self.data_dir, batch_size,
                                     process_index=0, process_count=1)


@dataclasses.dataclass
class ExperimentData:
    config: object
    name: str                       # built TFDS set, e.g. 'pipnet_wflw', 'pipnet_300w/300w_gssl'
    data_dir: str
    landmark_set: LandmarkSet
    meanface: np.ndarray
    neighbors: np.ndarray
    eval_splits: list
    eval_name: str = ""             # evaluate on another built set (e.g. a target domain)
    eval_data_dir: str = ""
    cross_domain: list = dataclasses.field(default_factory=list)   # EvalSets of other built sets

    @property
    def sources(self):
        return [pipeline.Source(self.name, self.config.data.train_split, self.data_dir)]

    def steps_per_epoch(self, per_host_batch: int, sources=None) -> int:
        return pipeline.steps_per_epoch(sources or self.sources, per_host_batch)

    def train_batches(self, per_host_batch: int, start_step: int = 0, sources=None):
        """Augmented batches of the labeled set, or of `sources` (e.g. labeled + pseudo-labeled
        for a curriculum round)."""
        c = self.config
        return pipeline.train_batches(
            sources or self.sources, per_host_batch, seed=c.seed, start_step=start_step,
            augment_config=c.augment.to_dict(), flip_permutation=self.landmark_set.flip_permutation,
            shuffle_buffer=c.data.shuffle_buffer, threads=c.data.threads or None)

    @property
    def eval_sets(self) -> list:
        """Every evaluated split: eval_splits first (the first is the main result: pictures,
        STC summary), then the cross-domain sets."""
        return [self._eval_set(s) for s in self.eval_splits] + list(self.cross_domain)

    def eval_batches(self, split: str, batch_size: int):
        return self._eval_set(split).batches(batch_size)

    def _eval_set(self, split: str) -> EvalSet:
        return EvalSet(split, self.eval_name or self.name, split, self.eval_data_dir or self.data_dir)


def _ensure_built(name: str, data_dir: str, manual_dir: str, field: str, on_error: str, **options):
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


def _crop_build(key: str, crop: str):
    """(built set name, build options) of data set `key` cropped with rule `crop` ('' or the
    set's own rule: its default build). Another crop is another build, kept apart as the TFDS
    config '<crop rule>', e.g. 'pipnet_300w/300w_gssl'."""
    crop = crop if crop != builders.DATASETS[key].crop else ""
    return (f"pipnet_{key}/{crop}", {"crop": crop}) if crop else (f"pipnet_{key}", {})


def _cross_domain_set(spec: str, config, data_dir: str, landmark_set: LandmarkSet) -> EvalSet:
    """'dataset:split' of eval.cross_domain -> its EvalSet, built on first use from
    eval.manual_dirs.<dataset>; its points must be the model's landmark set."""
    dataset, _, split = str(spec).partition(":")
    key = dataset.lower()
    if key not in RAW_LAYOUT or key == "custom" or not split:
        raise ValueError(f"eval.cross_domain entry {spec!r}: expected 'dataset:split' with a dataset "
                         f"of {sorted(set(RAW_LAYOUT) - {'custom'})}, e.g. 'cofw68:test'")
    name = f"pipnet_{key}"
    if key in config.eval.manual_dirs:
        _ensure_built(name, data_dir, config.eval.manual_dirs[key], f"eval.manual_dirs.{key}",
                      config.data.on_error)
    info = builders.builder(name, data_dir).info  # other sets: built beforehand (builders CLI)
    if split not in info.splits:
        raise ValueError(f"eval.cross_domain entry {spec!r}: {name} has splits {sorted(info.splits)}")
    if info.metadata["num_points"] != landmark_set.num_points:
        raise ValueError(f"eval.cross_domain entry {spec!r}: {name} has {info.metadata['num_points']} "
                         f"points, the landmark set {landmark_set.name!r} {landmark_set.num_points}")
    return EvalSet(f"{key}/{split}", name, split, data_dir)


def _corpus_set(entry: str, data_dir: str, manual_dirs: dict, on_error: str):
    """'dataset:split[:crop rule]' of stc.corpus.sets -> (part name 'dataset:split', its
    open_corpus spec); the set is built on first use from stc.corpus.manual_dirs.<dataset>
    (other data sets: built beforehand, as eval.cross_domain's)."""
    dataset, split, crop, *rest = str(entry).split(":") + ["", ""]
    key = dataset.lower()
    if key not in RAW_LAYOUT or key == "custom" or not split or any(rest) or (
            crop and crop not in annotations.CROP_RULES):
        raise ValueError(f"stc.corpus.sets entry {entry!r}: expected 'dataset:split[:crop rule]' with a "
                         f"dataset of {sorted(set(RAW_LAYOUT) - {'custom'})} and a crop rule of "
                         f"{annotations.CROP_RULES} (empty: the set's own), e.g. 'cofw:train:cofw_gssl'")
    name, options = _crop_build(key, crop)
    if key in manual_dirs:
        _ensure_built(name, data_dir, manual_dirs[key], f"stc.corpus.manual_dirs.{key}", on_error, **options)
    splits = builders.builder(name, data_dir).info.splits
    if split not in splits:
        raise ValueError(f"stc.corpus.sets entry {entry!r}: {name} has splits {sorted(splits)}")
    return f"{key}:{split}", {"tfds": name, "split": split, "data_dir": data_dir}


def _faceboxes_weights(path: str) -> str:
    """stc.corpus.faceboxes_weights checked (sha256), or found when empty (as --mode=predict:
    $PIPNET_FACEBOXES_WEIGHTS, the cache, a download); its errors name the field."""
    from pipnet_jax import detection
    try:
        if not path:
            return detection.default_weights_path()
        detection.verify_weights_file(path)
        return path
    except (OSError, ValueError, RuntimeError) as e:
        raise type(e)(f"stc.corpus.faceboxes_weights={path!r} (= predict.faceboxes_weights; "
                      f"stc.corpus.detect='faceboxes' needs the FaceBoxesV2 weights): {e}") \
            from None


def _detected_spec(spec: dict) -> dict:
    """stc.corpus.detect: the folder stc.corpus.images holds whole images, their faces found by
    the detector; a bad kind or weights file is refused here, before the teacher trains."""
    kind = spec["detect"]
    if kind not in corpus.DETECTORS:
        raise ValueError(f"stc.corpus.detect={kind!r}: expected one of {corpus.DETECTORS} (the "
                         f"faces of stc.corpus.images are detected), or empty")
    if "images" not in spec or set(spec) - {"images", "detect", *DETECTOR_FIELDS}:
        raise ValueError(f"stc.corpus.detect={kind!r} detects the faces of the whole images in "
                         f"stc.corpus.images: set it and no other corpus field (got "
                         f"{', '.join(f'stc.corpus.{k}' for k in sorted(spec))})")
    if kind == "haar":  # no weights, no score (as --mode=predict's Haar detector)
        return {"images": spec["images"], "detect": kind}
    return {**spec, "faceboxes_weights": _faceboxes_weights(spec.get("faceboxes_weights", ""))}


def prepare_corpus(spec: dict, data_dir: str, on_error: str = "raise") -> dict:
    """stc.corpus (to_dict(); unset fields are '' or ()) -> the corpus.open_corpus spec. stc.corpus.sets
    ('dataset:split[:crop rule]', ...) is the whole corpus: each set is built on first use into
    data_dir (as prepare builds the labeled set) and is a part named 'dataset:split', in order.
    stc.corpus.detect ('faceboxes' or 'haar') makes stc.corpus.images a folder of whole images
    whose faces are detected (settings: stc.corpus.faceboxes_weights / score_threshold).
    Otherwise the images / boxes / tfds fields pass through."""
    spec = {k: v for k, v in dict(spec).items() if v not in ("", (), None)}  # 0.0 is a value
    manual_dirs = dict(spec.pop("manual_dirs", None) or {})
    sets = spec.pop("sets", None) or ()
    sets = (sets,) if isinstance(sets, str) else tuple(sets)
    if "tfds" not in spec:
        spec.pop("split", None)  # the tfds field's default: means nothing to the other kinds
    if not spec.get("detect"):  # the detector's settings (defaults set): nothing without one
        spec = {k: v for k, v in spec.items() if k not in DETECTOR_FIELDS}
    if not sets:
        return _detected_spec(spec) if spec.get("detect") else spec
    named = sorted(set(spec) - set(DETECTOR_FIELDS))
    if named:
        raise ValueError(f"stc.corpus.sets={sets} is the whole corpus; leave "
                         f"{', '.join(f'stc.corpus.{k}' for k in named)} empty")
    parts = {}
    for entry in sets:
        name, part = _corpus_set(entry, data_dir, manual_dirs, on_error)
        if name in parts:  # the part name is the id prefix: it must be unique
            raise ValueError(f"stc.corpus.sets={sets}: {name!r} occurs twice")
        parts[name] = part
    return {"parts": parts}


def prepare(config, workdir: str) -> ExperimentData:
    """Builds (or reuses) the data set and the mean face; writes <workdir>/meanface.txt."""
    d = config.data
    data_dir = d.data_dir or os.path.join(os.path.dirname(os.path.abspath(workdir)), "tfds")
    key = d.dataset.lower()
    name = f"pipnet_{key}"
    if key == "synthetic":
        if d.crop:
            raise ValueError(f"data.crop={d.crop!r}: the synthetic set has its own crop; leave it empty")
        builders.prepare_synthetic(data_dir, d.synthetic_train, d.synthetic_test, seed=config.seed)
    else:
        if key not in RAW_LAYOUT:
            raise ValueError(f"data.dataset={d.dataset!r}: expected synthetic or one of {sorted(RAW_LAYOUT)}")
        if d.crop and d.crop not in annotations.CROP_RULES:
            raise ValueError(f"data.crop={d.crop!r}: expected '' or one of {annotations.CROP_RULES}")
        name, options = _crop_build(key, d.crop)
        _ensure_built(name, data_dir, d.manual_dir, "data.manual_dir", d.on_error, **options)
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
    import jax
    if jax.process_index() == 0 and not os.path.exists(path):
        os.makedirs(workdir, exist_ok=True)
        write_meanface(path, meanface)
    cross_domain = [_cross_domain_set(s, config, data_dir, landmark_set) for s in config.eval.cross_domain]
    return ExperimentData(config, name, data_dir, landmark_set, meanface,
                          neighbor_indices(meanface, config.model.num_neighbors), list(d.eval_splits),
                          cross_domain=cross_domain)
