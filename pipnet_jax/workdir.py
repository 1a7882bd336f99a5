"""One run folder and where trained models come from.

    <workdir>/config.json      the fields that fix the experiment (FIXED_FIELDS)
    <workdir>/meanface.txt     the mean face the run trained with (the original's format)
    <workdir>/checkpoints/     Orbax checkpoints
    <workdir>/results.json     evaluation, ced.png, predictions.png

`load_model(workdir)` and `load_torch_model(path, ...)` are the one way inference, export,
evaluation and STC get a trained network: a `LoadedModel` (model, variables, mean face,
neighbor table, landmark set, input size)."""
import contextlib
import dataclasses
import fcntl
import json
import os
import socket
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from pipnet_jax.checkpoint import load_variables
from pipnet_jax.errors import UserError
from pipnet_jax.files import write_json_atomic
from pipnet_jax.landmarks import get_landmark_set, landmark_set_for_points
from pipnet_jax.meanface import neighbor_indices, read_meanface, released_meanface
from pipnet_jax.models import PIPNet
from pipnet_jax.torch_port import from_torch_state_dict, load_torch_checkpoint
from pipnet_jax.version import provenance

CONFIG_FILE, MEANFACE_FILE, CHECKPOINTS, LOCK_FILE = "config.json", "meanface.txt", "checkpoints", ".lock"
# Config fields that must not change when a workdir is resumed or evaluated.
FIXED_FIELDS = ("model", "data.dataset", "data.landmarks", "data.crop", "data.train_split",
                "seed", "train.batch_size", "train.compute_dtype")
# Values of fields added later, for workdirs whose config.json predates them.
FIXED_FIELD_DEFAULTS = {"data.crop": ""}


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    model: PIPNet
    variables: dict          # {'params', 'batch_stats'}
    meanface: np.ndarray     # (N, 2)
    landmarks: Optional[str]  # landmark set name (landmarks.get_landmark_set); None: unknown
    input_size: int
    source: str              # the workdir (with its step) or the .pth it came from

    @property
    def neighbors(self) -> np.ndarray:
        return neighbor_indices(self.meanface, self.model.num_neighbors)


def _lookup(config, dotted):
    for part in dotted.split("."):
        config = config[part]
    return config.to_dict() if hasattr(config, "to_dict") else config


def fixed_fields(config) -> dict:
    return {f: _lookup(config, f) for f in FIXED_FIELDS}


class WorkdirBusyError(UserError):
    """Another live process runs in this workdir."""


class WorkdirError(UserError, ValueError):
    """A workdir file that cannot be read (its message names the file)."""


def read_config(workdir: str) -> dict:
    """The workdir's config.json (FIXED_FIELDS; older workdirs get FIXED_FIELD_DEFAULTS)."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {workdir} is not a training workdir")
    try:
        with open(path) as f:
            saved = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WorkdirError(f"{path}: not a readable config.json ({e}); it was damaged: restore it "
                           f"or use another --workdir") from None
    if not isinstance(saved, dict):
        raise WorkdirError(f"{path}: expected a JSON object, got {type(saved).__name__}")
    return {k: saved.get(k, FIXED_FIELD_DEFAULTS.get(k)) for k in FIXED_FIELDS}


@contextlib.contextmanager
def run_lock(workdir: str):
    """One run per workdir: an exclusive lock on <workdir>/.lock for as long as the run lasts.
    The OS drops it when the process ends, however it ends (kill -9 leaves no stale lock).
    Taken by process 0 only: a run's other hosts share its workdir."""
    if jax.process_index() != 0:
        yield
        return
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, LOCK_FILE)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise WorkdirBusyError(f"{workdir} is in use by another run ({holder}); wait for it to "
                                   f"end, or use another --workdir") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def check_config(config, workdir: str, write: bool = True) -> None:
    """A workdir belongs to one experiment: a config with another model, data set or batch
    size is refused with the differing fields named. Writes config.json the first time
    (process 0) when `write`."""
    current = fixed_fields(config)
    if os.path.exists(os.path.join(workdir, CONFIG_FILE)):
        saved = read_config(workdir)
        differ = [f"{k}: workdir has {saved[k]!r}, config has {current[k]!r}"
                  for k in FIXED_FIELDS if saved[k] != current[k]]
        if differ:
            raise ValueError(f"{workdir} was written by a different config; use another "
                             f"--workdir or the same settings:\n  " + "\n  ".join(differ))
    elif write and jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        write_json_atomic(os.path.join(workdir, CONFIG_FILE), {**current, **provenance()})


def load_model(workdir: str, step: Optional[int] = None) -> LoadedModel:
    """The trained network of a workdir: config.json, meanface.txt and the latest (or given)
    checkpoint, built float32 whatever the training compute dtype (params are float32)."""
    cfg = read_config(workdir)
    m, landmarks = cfg["model"], cfg["data.landmarks"]
    meanface = read_meanface(os.path.join(workdir, MEANFACE_FILE))
    if landmarks is not None and get_landmark_set(landmarks).num_points != len(meanface):
        raise ValueError(f"{os.path.join(workdir, MEANFACE_FILE)} has {len(meanface)} points; the "
                         f"workdir's landmark set {landmarks!r} has {get_landmark_set(landmarks).num_points}")
    if landmarks is None:  # an older workdir: the point count names the built-in set
        found = landmark_set_for_points(len(meanface))
        landmarks = found.name if found else None
    model = PIPNet(len(meanface), m["backbone"], m["num_neighbors"], m["net_stride"])
    variables, step = load_variables(workdir, step)
    expected = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                              jnp.zeros((1, m["input_size"], m["input_size"], 3)))
    shapes = lambda tree: jax.tree_util.tree_map(np.shape, dict(tree))  # noqa: E731
    if shapes(expected) != shapes(variables):
        raise ValueError(f"checkpoint step {step} in {workdir} does not fit "
                         f"PIPNet({model.num_landmarks}, {model.backbone!r}) from its {CONFIG_FILE}")
    return LoadedModel(model, variables, meanface, landmarks, m["input_size"],
                       f"{os.path.abspath(workdir)}@{step}")


def load_torch_model(path: str, dataset: str = "wflw", backbone: str = "resnet18", meanface=None,
                     num_neighbors: int = 10, net_stride: int = 32, input_size: int = 256,
                     num_landmarks: Optional[int] = None) -> LoadedModel:
    """A PyTorch PIPNet .pth (e.g. a released epoch59.pth, recognised by sha256, which then
    fixes data set and backbone). meanface: a file, an (N, 2) array, or None for the
    original's mean face of `dataset`."""
    state, released = load_torch_checkpoint(path)
    if released is not None:
        dataset, backbone = released.dataset, released.backbone
    landmarks = "300w" if dataset.startswith("300w") else dataset
    n = get_landmark_set(landmarks).num_points if num_landmarks is None else num_landmarks
    if meanface is None:
        meanface = released_meanface(dataset)
    elif isinstance(meanface, (str, os.PathLike)):
        where, meanface = meanface, read_meanface(meanface)
        if len(meanface) != n:
            raise ValueError(f"{where} has {len(meanface)} points, not {n}")
    model = PIPNet(n, backbone, num_neighbors, net_stride)
    return LoadedModel(model, from_torch_state_dict(state, model), np.asarray(meanface),
                       landmarks, input_size, os.path.abspath(path))
