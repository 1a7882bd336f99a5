"""stc.corpus (the config) -> an open corpus: raw sets built on first use, whole images whose
faces a detector finds (the detector made here, once per process, and handed to
data.corpus.detected), or the folder / box list / TFDS kinds data.corpus opens itself."""
import functools
import os

from pipnet_jax import detection
from pipnet_jax.config_checks import DETECTORS
from pipnet_jax.crops import CROP_RULES
from pipnet_jax.data import builders, corpus
from pipnet_jax.data.dataset import crop_build, ensure_built
from pipnet_jax.data.datasets import RAW_LAYOUT

# stc.corpus fields that are the detector's settings (the same values as predict's).
DETECTOR_FIELDS = ("faceboxes_weights", "score_threshold")
# HaarDetector's defaults, passed explicitly so that the description states them.
HAAR_SETTINGS = {"scale_factor": 1.1, "min_neighbors": 3}


def detector_settings(kind, faceboxes_weights="", score_threshold=0.6) -> dict:
    """make_detector keywords of detector `kind`, as --mode=predict makes its detector: the
    FaceBoxesV2 weights file ('': $PIPNET_FACEBOXES_WEIGHTS or the cache, see
    detection.default_weights_path) and score threshold; Haar has neither (its score is 1).
    The weights file is checked here (sha256), before any item is loaded."""
    if kind == "haar":
        return dict(HAAR_SETTINGS)
    if kind != "faceboxes":
        raise ValueError(f"unknown detector {kind!r}: use one of {DETECTORS}")
    path = faceboxes_weights or detection.default_weights_path()
    detection.verify_weights_file(path)
    return {"weights_path": os.path.abspath(path), "score_threshold": float(score_threshold)}


@functools.lru_cache(maxsize=None)
def load_detector(kind, **settings):
    """The detector of `kind` with `settings`, made once per process (FaceBoxesV2 loads its
    weights and compiles; every corpus with the same detector shares it)."""
    return detection.make_detector(kind, **settings)


def describe_detector(kind, settings) -> dict:
    """Kind and settings, the weights by their (checked) sha256 rather than their path, which
    may change without changing a crop."""
    named = {"kind": kind, **settings}
    if named.pop("weights_path", None):
        named["weights_sha256"] = detection.FACEBOXES_SHA256
    return named


def detected(root, detector="faceboxes", faceboxes_weights="", score_threshold=0.6) -> corpus.Corpus:
    """data.corpus.detected with the detector of `detector` (loaded at the first item)."""
    settings = detector_settings(detector, faceboxes_weights, score_threshold)
    return corpus.detected(root, lambda image: load_detector(detector, **settings).detect(image),
                           describe_detector(detector, settings))


def open_corpus(spec=None, **kwargs) -> corpus.Corpus:
    """data.corpus.open_corpus, plus {'images': DIR, 'detect': 'faceboxes' or 'haar'
    [, 'faceboxes_weights', 'score_threshold']}: the faces of whole images, detected."""
    if isinstance(spec, (str, os.PathLike)):
        spec = {"images": spec}
    spec = {k: v for k, v in {**dict(spec or {}), **kwargs}.items() if v not in (None, "")}
    if "detect" in spec and set(spec) - set(DETECTOR_FIELDS) == {"images", "detect"}:
        options = {k: spec[k] for k in DETECTOR_FIELDS if k in spec}
        return detected(spec["images"], spec["detect"], **options)
    return corpus.open_corpus(spec)


def _corpus_set(entry: str, data_dir: str, manual_dirs: dict, on_error: str):
    """'dataset:split[:crop rule]' of stc.corpus.sets -> (part name 'dataset:split', its
    open_corpus spec); the set is built on first use from stc.corpus.manual_dirs.<dataset>
    (other data sets: built beforehand with the builders command)."""
    dataset, split, crop, *rest = str(entry).split(":") + ["", ""]
    key = dataset.lower()
    if key not in RAW_LAYOUT or key == "custom" or not split or any(rest) or (
            crop and crop not in CROP_RULES):
        raise ValueError(f"stc.corpus.sets entry {entry!r}: expected 'dataset:split[:crop rule]' with a "
                         f"dataset of {sorted(set(RAW_LAYOUT) - {'custom'})} and a crop rule of "
                         f"{CROP_RULES} (empty: the set's own), e.g. 'cofw:train:cofw_gssl'")
    name, options = crop_build(key, crop)
    if key in manual_dirs:
        ensure_built(name, data_dir, manual_dirs[key], f"stc.corpus.manual_dirs.{key}", on_error, **options)
    splits = builders.builder(name, data_dir).info.splits
    if split not in splits:
        raise ValueError(f"stc.corpus.sets entry {entry!r}: {name} has splits {sorted(splits)}")
    return f"{key}:{split}", {"tfds": name, "split": split, "data_dir": data_dir}


def _faceboxes_weights(path: str) -> str:
    """stc.corpus.faceboxes_weights checked (sha256), or found when empty (as --mode=predict:
    $PIPNET_FACEBOXES_WEIGHTS, the cache, a download); its errors name the field."""
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
    if kind not in DETECTORS:
        raise ValueError(f"stc.corpus.detect={kind!r}: expected one of {DETECTORS} (the "
                         f"faces of stc.corpus.images are detected), or empty")
    if "images" not in spec or set(spec) - {"images", "detect", *DETECTOR_FIELDS}:
        raise ValueError(f"stc.corpus.detect={kind!r} detects the faces of the whole images in "
                         f"stc.corpus.images: set it and no other corpus field (got "
                         f"{', '.join(f'stc.corpus.{k}' for k in sorted(spec))})")
    if kind == "haar":  # no weights, no score (as --mode=predict's Haar detector)
        return {"images": spec["images"], "detect": kind}
    return {**spec, "faceboxes_weights": _faceboxes_weights(spec.get("faceboxes_weights", ""))}


def prepare_corpus(spec: dict, data_dir: str, on_error: str = "raise") -> dict:
    """stc.corpus (to_dict(); unset fields are '' or ()) -> the open_corpus spec. stc.corpus.sets
    ('dataset:split[:crop rule]', ...) is the whole corpus: each set is built on first use into
    data_dir (as the labeled set is) and is a part named 'dataset:split', in order.
    stc.corpus.detect ('faceboxes' or 'haar') makes stc.corpus.images a folder of whole images
    whose faces are detected (settings: stc.corpus.faceboxes_weights / score_threshold).
    Otherwise the images / boxes / tfds fields pass through."""
    spec = {k: v for k, v in dict(spec).items() if v not in ("", (), None)}  # 0.0 is a value
    spec.pop("from_eval", None)  # resolved by the caller (the eval set's data)
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
