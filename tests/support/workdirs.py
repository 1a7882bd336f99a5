"""A workdir as training leaves it (config.json, meanface.txt, one checkpoint of the whole
train state), for the tests that load, export or label from one without training."""
import json

import numpy as np

from pipnet_jax.checkpoint import Checkpointer


def write_workdir(path, variables, meanface_text: str, input_size: int = 128, step: int = 1):
    """An older-style config.json (no data.landmarks: the point count comes from the mean face);
    the optimizer state is restored with the rest but not needed."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model": {
        "backbone": "resnet18", "input_size": input_size, "net_stride": 32, "num_neighbors": 10,
        "pretrained_file": ""}, "train.compute_dtype": "float32"}))
    (path / "meanface.txt").write_text(meanface_text)
    checkpoints = Checkpointer(str(path / "checkpoints"))
    checkpoints.save(step, {"step": np.int32(step), "params": variables["params"],
                            "batch_stats": variables["batch_stats"], "opt_state": {"count": np.int32(step)}},
                     {"step": step, "epoch": 0, "loss": 1.0})
    checkpoints.close()
    return path
