"""The train and eval modes: config -> workdir -> Dataset -> model -> train or evaluate.

Builds everything from the config at the top and hands it down (scenic's main): the Dataset
(data.dataset.prepare), the model, the evaluators of config.evals; train.train and
evaluate.evaluate receive them."""
import functools

import jax
import jax.numpy as jnp
from clu import metric_writers

from pipnet_jax import parallel
from pipnet_jax.data import dataset as dataset_lib
from pipnet_jax.evaluate import Evaluator, evaluate
from pipnet_jax.inference import make_predict_fn
from pipnet_jax.models import PIPNet
from pipnet_jax.torch_port import from_torch_state_dict, load_torch_checkpoint
from pipnet_jax.train import TrainResult, train
from pipnet_jax.workdir import check_config, load_model, run_lock

COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def build_model(config, num_landmarks: int, stc: bool = False) -> PIPNet:
    if config.train.compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"train.compute_dtype must be one of {list(COMPUTE_DTYPES)}, "
                         f"got {config.train.compute_dtype!r}")
    return PIPNet(num_landmarks, config.model.backbone, config.model.num_neighbors,
                  config.model.net_stride, stc=stc, dtype=COMPUTE_DTYPES[config.train.compute_dtype])


def make_evaluate(config, workdir: str, model, dataset):
    """evaluate(variables, tag, writer=None, step=0) -> results over every split of
    dataset.eval_sets (config.evals), writing the workdir's results files."""
    predict = make_predict_fn(model, dataset.neighbors, config.model.input_size)
    evaluators = [Evaluator(predict, ev, dataset.landmark_set, config.eval.batch_size)
                  for ev in dataset.eval_sets]
    return functools.partial(evaluate, evaluators, workdir=workdir,
                             num_pictures=config.eval.num_pictures)


def print_before_after(before, after) -> None:
    if before is None or after is None or jax.process_index() != 0:
        return
    print("NME before training -> after:")
    for key in after:
        print(f"  {key}: {100 * before[key]['nme']:.2f}% -> {100 * after[key]['nme']:.2f}%")


def run_training(config, workdir: str, dataset, stc: bool = False, initial_variables=None) -> TrainResult:
    """One training run in `workdir` on `dataset` (a curriculum round passes its own, with
    stc=True: the model then has the pooled score maps and the loss is masked per task)."""
    check_config(config, workdir, write=False)
    model = build_model(config, dataset.landmark_set.num_points, stc=stc)
    with run_lock(workdir):
        check_config(config, workdir)  # config.json: written once the run has really started
        writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() != 0)
        result = train(config, workdir, model, dataset, make_evaluate(config, workdir, model, dataset),
                       initial_variables=initial_variables, writer=writer)
    print_before_after(result.results_before, result.results)
    return result


def run_train(config, workdir: str) -> TrainResult:
    """--mode=train: builds the data, trains (resuming), evaluates every config.evals split."""
    parallel.initialize_distributed()
    check_config(config, workdir, write=False)  # another experiment's workdir: refused first
    return run_training(config, workdir, dataset_lib.prepare(config, workdir))


def run_eval(config, workdir: str) -> dict:
    """--mode=eval: the workdir's latest checkpoint, or a PyTorch .pth given as
    config.eval.torch_checkpoint (converted on the fly; a released file is recognised by its
    sha256). A workdir trained with another config is refused (check_config). Results go to
    config.eval.output when set, else into the workdir. Under a multi-host launcher every
    process evaluates its share of each batch."""
    parallel.initialize_distributed()
    model = build_model(config, dataset_lib.landmark_count(config))
    if config.eval.torch_checkpoint:
        path = config.eval.torch_checkpoint
        state, released = load_torch_checkpoint(path)
        print(f"{path}: " + (f"released model {released.file}" if released
                             else "not a released checkpoint (sha256 unknown)"))
        variables = from_torch_state_dict(state, model)
        tag = "torch"
    else:
        check_config(config, workdir, write=False)
        loaded = load_model(workdir)
        variables = loaded.variables
        print(f"evaluating {loaded.source}")
        tag = "final"
    dataset = dataset_lib.prepare(config, workdir)
    return make_evaluate(config, config.eval.output or workdir, model, dataset)(variables, tag)
