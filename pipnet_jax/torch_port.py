"""PyTorch state dict <-> Flax variables for PIPNet and FaceBoxesV2, and the
released-checkpoint registry.

Flax module names equal the PyTorch attribute names (models/layers.py), so a variable path
joined with '.' is the torch key with the leaf renamed (kernel/scale -> weight, mean ->
running_mean, var -> running_var) and conv kernels transposed OIHW <-> HWIO.

torch itself is imported only where a .pth is read or written (not at module level).
"""
import dataclasses
import hashlib
import json
import os
import re
from importlib import resources
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from pipnet_jax.errors import UserError
from pipnet_jax.files import atomic_path
from pipnet_jax.models.faceboxes import FaceBoxesV2

LEAF_TO_TORCH = {("params", "kernel"): "weight", ("params", "scale"): "weight",
                 ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
                 ("batch_stats", "var"): "running_var",
                 ("batch_stats", "num_batches_tracked"): "num_batches_tracked"}


class CheckpointMismatchError(UserError, ValueError):
    """A state dict that does not fit the model; the message lists what differs."""


@dataclasses.dataclass(frozen=True)
class ReleasedCheckpoint:
    file: str
    dataset: str
    num_landmarks: int
    backbone: str
    num_neighbors: int
    net_stride: int
    bytes: int
    sha256: str


def released_checkpoints() -> list[ReleasedCheckpoint]:
    """The official PIPNet release (sizes and sha256), kept in the package as data."""
    text = resources.files("pipnet_jax").joinpath("released_checkpoints.json").read_text()
    return [ReleasedCheckpoint(**row) for row in json.loads(text)]


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def identify_checkpoint(path: str) -> Optional[ReleasedCheckpoint]:
    """The released model this file is, by sha256; None for any other (e.g. self-trained)
    file. A file with a released model's exact size but another hash is refused as corrupt."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    size, digest = os.path.getsize(path), file_sha256(path)
    for rel in released_checkpoints():
        if digest == rel.sha256:
            return rel
    for rel in released_checkpoints():
        if size == rel.bytes:
            raise ValueError(f"{path}: {size} bytes like the released {rel.file}, but sha256 "
                             f"{digest} != {rel.sha256}; the file is corrupt or modified")
    return None


def _torch_load(path: str, what: str):
    """torch.load(weights_only=True): plain tensors, no code execution."""
    import torch  # lazy: torch is needed only to read .pth files

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for non-checkpoint files
        raise ValueError(f"{path}: not a readable PyTorch {what} ({type(e).__name__}: {e})") from e


def load_torch_checkpoint(path: str) -> tuple[dict[str, np.ndarray], Optional[ReleasedCheckpoint]]:
    """Reads a `.pth` state dict (weights_only, no code execution) as numpy arrays, strips a
    DataParallel 'module.' prefix, and says which released model it is (None if not one)."""
    released = identify_checkpoint(path)
    obj = _torch_load(path, "checkpoint")
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict (mapping of tensors), got {type(obj).__name__}")
    state = numpy_state_dict(obj)
    return state, released


def _walk(tree, prefix=()):
    """(path, leaf) pairs in insertion order, i.e. module creation order (tree_flatten sorts)."""
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _walk(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def _flat_variables(variables) -> dict[str, tuple[tuple[str, str], Any]]:
    """torch key -> ((collection, leaf), value); given dicts in module creation order, the
    keys come in torch's registration order (a module's params, then its BN buffers)."""
    stats: dict[tuple, list] = {}
    for path, value in _walk(variables.get("batch_stats", {})):
        stats.setdefault(path[:-1], []).append((path[-1], value))
    out = {}
    for path, value in _walk(variables["params"]):
        module, leaf = path[:-1], path[-1]
        out[".".join(module + (LEAF_TO_TORCH[("params", leaf)],))] = (("params", leaf), value)
        if leaf == "bias" and module in stats:  # BatchNorm: weight, bias, then its buffers
            for sleaf, svalue in stats.pop(module):
                out[".".join(module + (LEAF_TO_TORCH[("batch_stats", sleaf)],))] = (("batch_stats", sleaf), svalue)
    return out


def _to_torch_layout(leaf: str, value) -> np.ndarray:
    value = np.asarray(value)
    if leaf == "kernel":
        return value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    if leaf == "num_batches_tracked":
        return value.astype(np.int64)
    return value


def _from_torch_layout(leaf: str, value: np.ndarray) -> np.ndarray:
    if leaf == "kernel":
        return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
    if leaf == "num_batches_tracked":
        return value.astype(np.int32)
    return value.astype(np.float32)


def model_layout(model, image_size: Optional[int] = None):
    """(abstract variables, torch keys in registration order) without computing anything.

    The order is read inside the trace: jax.eval_shape returns dicts with sorted keys, but
    Flax builds them in module creation order, which is torch's registration order."""
    size = image_size or 4 * model.net_stride
    keys: list[str] = []

    def init():
        variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)))
        keys.extend(_flat_variables(variables))
        return variables

    abstract = jax.eval_shape(init)
    return abstract, keys


def describe_state_dict(state: Mapping[str, Any]) -> str:
    """Backbone, landmark and neighbor counts as the keys and shapes tell them."""
    keys = set(state)
    if "conv.0.weight" in keys:
        backbone = "mobilenet_v3"
    elif any(k.startswith("features.") for k in keys):
        backbone = "mobilenet_v2"
    elif "layer1.0.conv3.weight" in keys:
        blocks = {int(m.group(1)) for k in keys if (m := re.match(r"layer3\.(\d+)\.", k))}
        backbone = {6: "resnet50", 23: "resnet101"}.get(len(blocks), f"bottleneck resnet ({len(blocks)} layer3 blocks)")
    elif "layer1.0.conv1.weight" in keys:
        backbone = "resnet18"
    else:
        backbone = "unknown backbone"
    parts = [backbone]
    if "cls_layer.weight" in state:
        n = np.shape(state["cls_layer.weight"])[0]
        parts.append(f"{n} landmarks")
        if "nb_x_layer.weight" in state:
            parts.append(f"{np.shape(state['nb_x_layer.weight'])[0] // max(n, 1)} neighbors")
    stride = {0: 32, 1: 64, 2: 128}[sum(k in keys for k in ("layer5.weight", "layer6.weight"))]
    parts.append(f"net_stride {stride}")
    return ", ".join(parts)


def _list(items, limit=8):
    items = sorted(items)
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def numpy_state_dict(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Tensors or arrays -> numpy arrays, without a DataParallel 'module.' prefix."""
    return {(k[len("module."):] if k.startswith("module.") else k):
            (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
            for k, v in state_dict.items()}


def mismatch_error(title: str, missing=(), unexpected=(), wrong=()) -> CheckpointMismatchError:
    """The error for a state dict that does not fit: `title`, then the differing keys."""
    lines = [title]
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrongly shaped", wrong)):
        if keys:
            lines.append(f"{label} keys ({len(keys)}): {_list(keys)}")
    return CheckpointMismatchError("\n  ".join(lines))


def _differences(state: Mapping[str, np.ndarray], abstract):
    """(missing, unexpected, wrongly shaped) keys of `state` against abstract variables."""
    expected = _flat_variables(abstract)
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    wrong = [f"{k} {tuple(state[k].shape)} (model: {tuple(_to_torch_layout(leaf, np.zeros(v.shape)).shape)})"
             for k, ((_, leaf), v) in expected.items()
             if k in state and _from_torch_layout(leaf, state[k]).shape != tuple(v.shape)]
    return missing, unexpected, wrong


def _variables_from_state(abstract, state: Mapping[str, np.ndarray]) -> dict:
    """Every variable of `abstract` read from the (checked) numpy state dict."""
    def fill(path, _):
        names = tuple(k.key for k in path)
        collection, leaf = names[0], names[-1]
        key = ".".join(names[1:-1] + (LEAF_TO_TORCH[(collection, leaf)],))
        return jnp.asarray(_from_torch_layout(leaf, state[key]))

    return jax.tree_util.tree_map_with_path(fill, dict(abstract))


def from_torch_state_dict(state_dict: Mapping[str, Any], model) -> dict:
    """Flax variables {'params', 'batch_stats'} for `model` from a PyTorch state dict (torch
    tensors or numpy arrays). Raises CheckpointMismatchError naming missing, unexpected and
    wrongly shaped keys, and what the checkpoint looks like versus what the model is."""
    state = numpy_state_dict(state_dict)
    abstract, _ = model_layout(model)
    missing, unexpected, wrong = _differences(state, abstract)
    if missing or unexpected or wrong:
        raise mismatch_error(
            f"state dict does not fit PIPNet(num_landmarks={model.num_landmarks}, "
            f"backbone={model.backbone!r}, num_neighbors={model.num_neighbors}, "
            f"net_stride={model.net_stride}): the checkpoint looks like "
            f"{describe_state_dict(state)}", missing, unexpected, wrong)
    return _variables_from_state(abstract, state)


# Any size that is whole cells at every FaceBoxesV2 level: the variables do not depend on it.
_FACEBOXES_LAYOUT_SIZE = 128


def faceboxes_from_state_dict(state_dict: Mapping[str, Any]) -> dict:
    """Flax variables of models.FaceBoxesV2 from its state dict ('module.' prefixes stripped);
    raises CheckpointMismatchError listing missing / unexpected / wrongly shaped keys."""
    state = numpy_state_dict(state_dict)
    abstract, _ = model_layout(FaceBoxesV2(), _FACEBOXES_LAYOUT_SIZE)
    missing, unexpected, wrong = _differences(state, abstract)
    if missing or unexpected or wrong:
        raise mismatch_error("state dict does not fit FaceBoxesV2", missing, unexpected, wrong)
    return _variables_from_state(abstract, state)


def load_faceboxes_pth(path: str) -> dict:
    """Flax variables {'params', 'batch_stats'} from a FaceBoxesV2 .pth. The release is a
    legacy (non-zip) torch pickle of plain tensors, which torch.load(weights_only=True) reads
    without executing code. Checking that the file is the released one is detection's job."""
    return faceboxes_from_state_dict(_torch_load(path, "state dict"))


def to_torch_state_dict(variables, model) -> dict[str, np.ndarray]:
    """The released checkpoint's keys, shapes and key order (numpy arrays; conv kernels
    OIHW; num_batches_tracked int64)."""
    abstract, keys = model_layout(model)
    expected = jax.tree_util.tree_map(lambda a: tuple(a.shape), dict(abstract))
    got = jax.tree_util.tree_map(lambda a: tuple(np.shape(a)), dict(variables))
    if expected != got:
        raise CheckpointMismatchError(
            f"variables do not fit PIPNet(num_landmarks={model.num_landmarks}, "
            f"backbone={model.backbone!r}, net_stride={model.net_stride})")
    flat = _flat_variables(variables)
    return {k: _to_torch_layout(flat[k][0][1], flat[k][1]) for k in keys}


def save_torch_checkpoint(path: str, variables, model) -> None:
    """Writes a .pth loadable by the original code (torch.save of the state dict), atomically."""
    import torch  # lazy: torch is needed only to write .pth files

    state = {k: torch.from_numpy(np.array(v)) for k, v in to_torch_state_dict(variables, model).items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


# Keys of an ImageNet classifier that PIPNet does not have.
CLASSIFIER_PREFIXES = ("fc.", "classifier.")


def load_backbone_weights(state_dict: Mapping[str, Any], model, variables) -> dict:
    """ImageNet initialisation (the original's pretrained=True): a torchvision ResNet /
    MobileNetV2 or d-li14 MobileNetV3 state dict replaces the backbone's variables; the PIP
    head and the extra stride layers keep their init. The classifier (fc / classifier) is
    dropped; any other mismatch is an error listing the keys."""
    state = numpy_state_dict(state_dict)
    flat = _flat_variables(variables)
    head = ("cls_layer.", "x_layer.", "y_layer.", "nb_x_layer.", "nb_y_layer.", "layer5.", "bn5.",
            "layer6.", "bn6.")
    backbone_keys = [k for k in flat if not k.startswith(head)]
    missing = [k for k in backbone_keys if k not in state]
    unexpected = [k for k in state if k not in flat and not k.startswith(CLASSIFIER_PREFIXES)]
    wrong = [f"{k} {tuple(state[k].shape)}" for k in backbone_keys if k in state
             and _from_torch_layout(flat[k][0][1], state[k]).shape != tuple(np.shape(flat[k][1]))]
    if missing or unexpected or wrong:
        raise mismatch_error(f"pretrained weights do not fit the {model.backbone} backbone (the "
                             f"file looks like {describe_state_dict(state)})", missing, unexpected, wrong)

    def fill(path, value):
        names = tuple(k.key for k in path)
        key = ".".join(names[1:-1] + (LEAF_TO_TORCH[(names[0], names[-1])],))
        if key in state and key in backbone_keys:
            return jnp.asarray(_from_torch_layout(names[-1], state[key]))
        return value

    return jax.tree_util.tree_map_with_path(fill, dict(variables))
