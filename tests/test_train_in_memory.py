"""One training step of the real loop (train.train) on an in-memory Dataset, flax-examples
style: no TensorFlow, no files but the workdir. It checkpoints, evaluates before and after,
resumes without training again, and a preemption flag stops it with a TrainResult."""
import os

import jax
import numpy as np

from configs.common import base_config
from in_memory import InMemoryDataset
from pipnet_jax.evaluate import Evaluator, evaluate
from pipnet_jax.inference import make_predict_fn
from pipnet_jax.models import PIPNet
from pipnet_jax.train import init_variables, train


def tiny_config():
    c = base_config()
    c.model.input_size = 64
    c.model.num_neighbors = 2
    c.train.batch_size, c.train.max_steps = 4, 1
    c.train.learning_rate = 1e-3
    c.train.log_every_steps = c.train.checkpoint_every_steps = 1
    return c


def test_one_step_on_an_in_memory_dataset(tmp_path):
    config, data = tiny_config(), InMemoryDataset()
    model = PIPNet(5, "resnet18", num_neighbors=2)
    predict = make_predict_fn(model, data.neighbors, 64)
    evaluators = [Evaluator(predict, ev, data.landmark_set, batch_size=4) for ev in data.eval_sets]
    workdir = str(tmp_path / "w")

    def run_evaluation(variables, tag, **kw):
        return evaluate(evaluators, variables, tag, workdir=workdir, num_pictures=2, **kw)

    initial = init_variables(model, config)
    result = train(config, workdir, model, data, run_evaluation)
    assert (result.step, result.preempted) == (1, False)
    assert os.path.isdir(os.path.join(workdir, "checkpoints", "1"))
    assert set(result.results) == set(result.results_before) == {"test"}
    assert result.results["test"]["count"] == 4 and np.isfinite(result.results["test"]["nme"])
    for name in ("results.json", "results_before.json", "ced.png", "predictions.png"):
        assert os.path.exists(os.path.join(workdir, name)), name
    moved = jax.tree_util.tree_map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                                   initial["params"], result.variables["params"])
    assert all(jax.tree_util.tree_leaves(moved))  # Adam moves every parameter on step one

    again = train(config, workdir, model, data)  # finished: restores step 1, trains nothing
    assert (again.step, again.preempted, again.results_before) == (1, False, None)
    jax.tree_util.tree_map(np.testing.assert_array_equal, result.variables, again.variables)
