"""The parity demo (`--mode=demo`): a randomly initialised PIPNet on a generated face, forward +
decode, a picture of the landmarks, and a parity report against the PyTorch reference network.

    report = run_demo(config, workdir)
    print_report(report)

or `run_from_config(config, workdir)`, which does both (`--mode=demo` of pipnet_jax.main).
"""
import os

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from pipnet_jax.data.synthetic import generate_face
from pipnet_jax.decode import decode_landmarks
from pipnet_jax.images import normalize_images
from pipnet_jax.landmarks import get_landmark_set
from pipnet_jax.meanface import compute_meanface, neighbor_indices
from pipnet_jax.models import PIPNet
from pipnet_jax.torch_port import to_torch_state_dict

try:  # torch is a dev dependency: without it the demo still runs and its report says so
    import torch

    from pipnet_jax.bench.reference_torch import PIPNetTorch, reference_decoder
except ImportError:
    torch = None

FIELDS = ("score", "offset_x", "offset_y", "neighbor_x", "neighbor_y")


def run_demo(config, workdir: str) -> dict:
    """Forward + decode of a random model on a generated face; returns the parity report
    (backbone, num_landmarks, mean_confidence, the torch parity errors, picture)."""
    size = config.model.input_size
    landmark_set = get_landmark_set(config.data.landmarks)  # the landmark set, not the data set
    rng = np.random.default_rng(config.seed)
    faces = [generate_face(rng, (size, size)) for _ in range(8)]
    meanface = compute_meanface(np.stack([f[1] / size for f in faces]))
    neighbors = neighbor_indices(meanface, config.model.num_neighbors)
    image_bgr = faces[0][0]
    images = np.asarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))[None]

    model = PIPNet(landmark_set.num_points, config.model.backbone, config.model.num_neighbors,
                   config.model.net_stride)
    x = normalize_images(images)
    variables = model.init(jax.random.PRNGKey(config.seed), x)
    forward = jax.jit(lambda v, im: decode_landmarks(model.apply(v, im), neighbors,
                                                     config.model.net_stride, size))
    (landmarks, confidence) = forward(variables, x)
    landmarks = np.asarray(landmarks[0])
    report = {"backbone": config.model.backbone, "num_landmarks": landmark_set.num_points,
              "mean_confidence": float(np.mean(confidence))}
    report.update(torch_parity(model, variables, np.asarray(x), neighbors, size, landmarks))

    os.makedirs(workdir, exist_ok=True)
    canvas = image_bgr.copy()
    for px, py in landmarks * size:
        cv2.circle(canvas, (int(round(px)), int(round(py))), 2, (0, 0, 255), -1)
    path = os.path.join(workdir, "demo_prediction.png")
    cv2.imwrite(path, canvas)
    report["picture"] = path
    return report


def torch_parity(model, variables, images, neighbors, input_size: int, landmarks) -> dict:
    """Runs the same weights in the PyTorch reference: max relative error of each output
    field and max landmark error; {torch_parity: note} when torch is absent."""
    if torch is None:
        return {"torch_parity": "skipped: torch is not installed (pip install -r requirements-dev.txt)"}
    net = PIPNetTorch(model.num_landmarks, model.backbone, model.num_neighbors, model.net_stride)
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in to_torch_state_dict(variables, model).items()})
    net.eval()
    with torch.no_grad():
        outputs = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
        ref, _ = reference_decoder(neighbors, model.net_stride, input_size)(outputs)
    ours = model.apply(variables, jnp.asarray(images))
    errors = {}
    for name, r in zip(FIELDS, outputs):
        r = r.numpy().transpose(0, 2, 3, 1)
        errors[f"max_rel_error_{name}"] = float(np.abs(np.asarray(getattr(ours, name)) - r).max() / np.abs(r).max())
    errors["max_landmark_error"] = float(np.abs(ref.numpy()[0] - landmarks).max())
    return errors


def print_report(report: dict) -> None:
    """The demo's printed report: one aligned `key  value` line per entry."""
    width = max(len(k) for k in report)
    print("PIPNet demo: random weights, generated face, forward + decode")
    for key, value in report.items():
        print(f"  {key:<{width}}  {value:.3g}" if isinstance(value, float) else f"  {key:<{width}}  {value}")


def run_from_config(config, workdir: str) -> dict:
    """`--mode=demo` of pipnet_jax.main: run_demo, then print_report."""
    report = run_demo(config, workdir)
    print_report(report)
    return report
