"""Command line: python -m pipnet_jax.main --config configs/synthetic.py --workdir DIR [--mode ...].

Modes: `train` (default: train, resuming from DIR's latest checkpoint, then evaluate), `stc`
(self-training with curriculum: teacher, pseudo-labels, students; pipnet_jax.stc), `eval`
(DIR's checkpoint, or a PyTorch .pth given as --config.eval.torch_checkpoint), `bench` (JAX
vs the PyTorch reference, pipnet_jax.bench) and `demo` (a randomly initialised PIPNet on a
generated face, forward + decode, with a parity report against the PyTorch reference).
Config fields are overridable: --config.train.batch_size=64, --config.model.backbone=resnet50."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

from absl import app, flags, logging
from ml_collections import config_flags

MODES = ("train", "eval", "predict", "stc", "bench", "demo")
_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config file", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder; default workdirs/<config name>")
_MODE = flags.DEFINE_enum("mode", "train", MODES, "what to run")


def run_demo(config, workdir: str) -> dict:
    """Forward + decode of a random model on a generated face; returns the parity report."""
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

    size = config.model.input_size
    landmark_set = get_landmark_set(config.data.dataset)
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
    report.update(torch_parity(model, variables, np.asarray(x), neighbors, config, landmarks))

    os.makedirs(workdir, exist_ok=True)
    canvas = image_bgr.copy()
    for px, py in landmarks * size:
        cv2.circle(canvas, (int(round(px)), int(round(py))), 2, (0, 0, 255), -1)
    path = os.path.join(workdir, "demo_prediction.png")
    cv2.imwrite(path, canvas)
    report["picture"] = path
    return report


def torch_parity(model, variables, images, neighbors, config, landmarks) -> dict:
    """Runs the same weights in the PyTorch reference; {} with a note when torch is absent."""
    try:
        import torch
    except ImportError:
        return {"torch_parity": "skipped: torch is not installed (pip install -r requirements-dev.txt)"}
    import numpy as np

    from pipnet_jax.reference_torch import reference_decoder
    from pipnet_jax.reference_torch import PIPNetTorch
    from pipnet_jax.torch_port import to_torch_state_dict

    net = PIPNetTorch(model.num_landmarks, model.backbone, model.num_neighbors, model.net_stride)
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in to_torch_state_dict(variables, model).items()})
    net.eval()
    with torch.no_grad():
        outputs = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
        ref, _ = reference_decoder(neighbors, model.net_stride, config.model.input_size)(outputs)
    import jax.numpy as jnp
    ours = model.apply(variables, jnp.asarray(images))
    errors = {}
    for name, r in zip(("score", "offset_x", "offset_y", "neighbor_x", "neighbor_y"), outputs):
        r = r.numpy().transpose(0, 2, 3, 1)
        errors[f"max_rel_error_{name}"] = float(np.abs(np.asarray(getattr(ours, name)) - r).max() / np.abs(r).max())
    errors["max_landmark_error"] = float(np.abs(ref.numpy()[0] - landmarks).max())
    return errors


def main(argv):
    logging.set_verbosity(logging.WARNING)  # progress bar + printed tables; TensorBoard has the scalars
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    if config is None:
        raise app.UsageError("--config is required, e.g. --config configs/synthetic.py")
    workdir = _WORKDIR.value or os.path.join("workdirs", os.path.splitext(os.path.basename(
        config_flags.get_config_filename(flags.FLAGS["config"]).split(":")[0]))[0])
    if _MODE.value == "bench":
        from pipnet_jax import bench
        batch = ",".join(str(b) for b in config.bench.batch_sizes)
        args = ["bench", f"--backbone={config.model.backbone}", f"--image_size={config.model.input_size}",
                f"--batch_sizes={batch}"] + ([f"--repeats={config.bench.repeats}"] if config.bench.repeats else [])
        bench.main(args)
        return
    if _MODE.value in ("train", "eval", "predict", "stc"):
        from pipnet_jax import predict, stc, train
        from pipnet_jax.checkpoint import CheckpointError
        from pipnet_jax.torch_port import CheckpointMismatchError
        run = {"train": train.train_and_evaluate, "eval": train.evaluate_checkpoint,
               "predict": predict.run_predict, "stc": stc.run_stc}[_MODE.value]
        try:
            run(config, workdir)
        except (FloatingPointError, CheckpointError, CheckpointMismatchError, FileNotFoundError,
                predict.InputError) as e:
            sys.exit(f"error: {e}")  # the message says what to do; no traceback
        return
    report = run_demo(config, workdir)
    width = max(len(k) for k in report)
    print("PIPNet demo: random weights, generated face, forward + decode")
    for key, value in report.items():
        print(f"  {key:<{width}}  {value:.3g}" if isinstance(value, float) else f"  {key:<{width}}  {value}")


if __name__ == "__main__":
    sys.exit(app.run(main))
