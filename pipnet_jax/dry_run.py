"""--mode=dry_run: what a training run of this config would take, without running it.

Prints one labelled line per value: the resolved config (`  field = value`), the data
set sizes and steps per epoch (or, for a set not built yet, what would build it), the model's
parameter counts, the forward FLOPs per image, and the compile time and memory of the real
sharded train step, compiled ahead of time on abstract inputs (jax.eval_shape /
ShapeDtypeStruct: nothing is materialised). Nothing is trained, built, generated or written:
no workdir, config.json, lock, mean face or data set."""
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from pipnet_jax import parallel
from pipnet_jax.crops import CROP_RULES
from pipnet_jax.data import builders, pipeline
from pipnet_jax.data.dataset import MAIN_EVAL, crop_build, default_data_dir, eval_entry, landmark_count
from pipnet_jax.data.datasets import RAW_LAYOUT
from pipnet_jax.errors import ConfigError
from pipnet_jax.experiment import build_model
from pipnet_jax.files import IMAGE_SIZE
from pipnet_jax.train import create_train_state, loop_train_step, make_optimizer
from pipnet_jax.workdir import check_config

MIB = 2 ** 20


def config_lines(config) -> list[str]:
    """The resolved config: a header, then one sorted `  field = value` line per leaf."""
    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v
    return ["config (resolved):"] + [f"  {k} = {v!r}" for k, v in sorted(flat(config.to_dict()))]


def workdir_line(config, workdir: str) -> str:
    if not os.path.isdir(workdir) or not os.listdir(workdir):
        return f"workdir: {workdir} (absent or empty: training starts there)"
    try:
        check_config(config, workdir, write=False)
    except ValueError as e:
        return f"workdir: {workdir} (training would refuse it: {' '.join(str(e).split())})"
    ckpt = os.path.join(workdir, "checkpoints")
    steps = [int(d) for d in os.listdir(ckpt) if d.isdigit()] if os.path.isdir(ckpt) else []
    return f"workdir: {workdir} (" + (f"training resumes at step {max(steps)})" if steps
                                      else "no checkpoint: training starts there)")


def _synthetic_stale(name, data_dir, seed, num_train, num_test, style="a"):
    """None when the built synthetic set has these parameters, else what it was built with."""
    built = json.loads(builders.builder(name, data_dir).info.metadata.get("raw_info") or "{}")
    if (built.get("seed"), built.get("num_train"), built.get("num_test"), built.get("style", "a")) \
            == (seed, num_train, num_test, style):
        return None
    return f"seed {built.get('seed')}, {built.get('num_train')} train / {built.get('num_test')} test faces"


def built_info(name: str, data_dir: str, how: str, synthetic=None):
    """(TFDS info, None) of a built set, or (None, one line saying why not and what builds it).
    synthetic: (seed, num_train, num_test, style) the config would generate it with."""
    try:
        info = builders.builder(name, data_dir).info
    except FileNotFoundError:
        return None, f"{name}: not built in {data_dir} ({how})"
    stale = synthetic and _synthetic_stale(name, data_dir, *synthetic)
    if stale:
        return None, (f"{name}: built in {data_dir} with other parameters ({stale}); training "
                      f"regenerates it ({how})")
    return info, None


def _build_hint(key: str, manual_dir: str, field: str) -> str:
    if not manual_dir:
        return f"set {field} to the raw {key.upper()} folder; training builds it"
    if not os.path.isdir(manual_dir):
        return f"{field}={manual_dir!r} is not a folder: give the raw {key} data set ({RAW_LAYOUT[key]})"
    return f"training builds it from {field}={manual_dir}"


def train_set(config, data_dir: str):
    """(built name, info or None, line when not built) of the training set."""
    d, key = config.data, config.data.dataset.lower()
    if key == "synthetic":
        if d.crop:
            raise ConfigError(f"data.crop={d.crop!r}: the synthetic set has its own crop; leave it empty")
        how = (f"training generates it: {d.synthetic_train} train / {d.synthetic_test} test faces, "
               f"seed {config.seed}")
        return ("pipnet_synthetic", *built_info("pipnet_synthetic", data_dir, how,
                                                (config.seed, d.synthetic_train, d.synthetic_test)))
    if key not in RAW_LAYOUT:
        raise ConfigError(f"data.dataset={d.dataset!r}: expected synthetic or one of {sorted(RAW_LAYOUT)}")
    if d.crop and d.crop not in CROP_RULES:
        raise ConfigError(f"data.crop={d.crop!r}: expected '' or one of {CROP_RULES}")
    name, _ = crop_build(key, d.crop)
    return (name, *built_info(name, data_dir, _build_hint(key, d.manual_dir, "data.manual_dir")))


def eval_lines(config, data_dir: str, train_name: str, train_info) -> list[str]:
    """`eval faces <key>: N` per split of config.evals, or one line per entry not built."""
    lines = []
    for entry in sorted(config.evals.keys(), key=lambda e: (e != MAIN_EVAL, e)):
        field, spec, dataset, splits, style = eval_entry(entry, config.evals[entry])
        if dataset == "synthetic" and style:
            n_train, n_test = spec.get("synthetic_train", 0), spec.get("synthetic_test", 0)
            name, where = "pipnet_synthetic", f"{data_dir}_style_{style}"
            info, why = built_info(name, where, f"training generates it: style {style!r}, {n_test} "
                                   f"test faces", (config.seed + 1, n_train, n_test, style))
        elif dataset not in ("", config.data.dataset.lower()):
            if dataset not in RAW_LAYOUT or dataset == "custom":
                raise ConfigError(f"{field}.dataset={dataset!r}: expected '' (the training set), "
                                  f"'synthetic' with a synthetic_style, or one of "
                                  f"{sorted(set(RAW_LAYOUT) - {'custom'})}")
            name = f"pipnet_{dataset}"
            how = (_build_hint(dataset, spec["manual_dir"], f"{field}.manual_dir")
                   if spec.get("manual_dir") else f"set {field}.manual_dir, or build it beforehand "
                   f"with pipnet-jax data build")
            info, why = built_info(name, data_dir, how)
        else:
            name, info = train_name, train_info
            why = None if info else f"{name}: not built (built with the training set)"
        keys = [s if entry == MAIN_EVAL else f"{entry}/{s}" for s in splits]
        if info is None:
            lines.append(f"eval faces {', '.join(keys)}: {why}")
            continue
        for key, split in zip(keys, splits):
            if split not in info.splits:
                raise ConfigError(f"{field}.splits: {name} has no split {split!r}; it has {sorted(info.splits)}")
            lines.append(f"eval faces {key}: {info.splits[split].num_examples}")
    return lines


def data_lines(config, workdir: str, per_host_batch: int) -> tuple[list[str], int | None]:
    """(lines, steps per epoch or None when the training set is not built)."""
    data_dir = default_data_dir(config, workdir)
    name, info, why = train_set(config, data_dir)
    lines = [f"data dir: {data_dir}"]
    steps = None
    if info is None:
        lines.append(f"train faces: {why}")
    else:
        split = config.data.train_split
        if split not in info.splits:
            raise ConfigError(f"data.train_split={split!r}: {name} has no such split; it has {sorted(info.splits)}")
        lines.append(f"train faces: {info.splits[split].num_examples}")
        steps = pipeline.steps_per_epoch([pipeline.Source(name, split, data_dir, task="std")], per_host_batch)
    lines += eval_lines(config, data_dir, name, info)
    lines.append(f"per-host batch: {per_host_batch} (global {config.train.batch_size}, "
                 f"{jax.process_count()} process(es), {jax.device_count()} device(s))")
    lines.append(f"steps per epoch: {steps}" if steps is not None
                 else "steps per epoch: unknown (the training set is not built)")
    return lines, steps


def abstract_variables(model, input_size: int):
    """{'params', 'batch_stats'} as ShapeDtypeStructs (jax.eval_shape: nothing allocated)."""
    images = jax.ShapeDtypeStruct((1, input_size, input_size, 3), jnp.float32)
    return jax.eval_shape(model.init, jax.random.PRNGKey(0), images)


def count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def forward_flops(model, variables, input_size: int) -> tuple[float, str]:
    """(FLOPs of one image's forward pass (eval mode, batch 1), where the number comes from):
    XLA's cost analysis of the compiled forward, else of the lowered one."""
    images = jax.ShapeDtypeStruct((1, input_size, input_size, 3), jnp.float32)
    lowered = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, images)
    for source, get in (("compiled", lambda: lowered.compile().cost_analysis()),
                        ("lowered", lowered.cost_analysis)):
        cost = get()
        cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
        if cost and cost.get("flops", 0) > 0:
            return float(cost["flops"]), f"XLA cost_analysis of the {source} forward"
    return 0.0, "unavailable (the backend gives no cost analysis)"


def compile_train_step(config, model, variables, steps_per_epoch: int):
    """The real sharded train step (train.py) compiled for abstract state and global batch:
    (compiled, lower seconds, compile seconds)."""
    mesh = parallel.make_mesh()
    tx, _ = make_optimizer(config.train, steps_per_epoch)  # the schedule does not change shapes
    state = jax.eval_shape(lambda v: create_train_state(v, tx), variables)
    neighbors = np.zeros((model.num_landmarks, model.num_neighbors), np.int32)  # only shapes matter
    t = config.train
    step = loop_train_step(config, model, tx, neighbors, mesh)
    batch = {"image": jax.ShapeDtypeStruct((t.batch_size, IMAGE_SIZE, IMAGE_SIZE, 3), jnp.uint8),
             "landmarks": jax.ShapeDtypeStruct((t.batch_size, model.num_landmarks, 2), jnp.float32),
             "stop": jax.ShapeDtypeStruct((t.batch_size,), jnp.int32)}
    start = time.perf_counter()
    lowered = step.lower(state, batch)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    return compiled, lowered_at - start, time.perf_counter() - lowered_at


def memory_lines(compiled) -> list[str]:
    m = compiled.memory_analysis()
    if m is None:
        return ["train step memory: unavailable (the backend gives no memory analysis)"]
    sizes = {"argument": m.argument_size_in_bytes, "output": m.output_size_in_bytes,
             "alias": m.alias_size_in_bytes, "temp": m.temp_size_in_bytes,
             "generated code": m.generated_code_size_in_bytes}
    total = (sizes["argument"] + sizes["output"] - sizes["alias"] + sizes["temp"]
             + sizes["generated code"])  # a donated argument's buffer is reused by the output
    return [f"train step memory {k}: {v / MIB:.1f} MiB" for k, v in sizes.items()] + [
        f"train step memory total: {total / MIB:.1f} MiB (argument + output - alias + temp + "
        f"generated code; per device)"]


def run_dry_run(config, workdir: str) -> dict:
    """--mode=dry_run: prints the report; returns its numbers."""
    out = config_lines(config) + [workdir_line(config, workdir)]
    print("\n".join(out), flush=True)
    per_host = parallel.check_batch_size(config.train.batch_size, parallel.make_mesh())
    lines, steps = data_lines(config, workdir, per_host)
    print("\n".join(lines), flush=True)

    size = config.model.input_size
    model = build_model(config, landmark_count(config))
    variables = abstract_variables(model, size)
    params, batch_stats = count(variables["params"]), count(variables["batch_stats"])
    flops, source = forward_flops(model, variables, size)
    print(f"model: {config.model.backbone}, {model.num_landmarks} landmarks, {size}x{size} input, "
          f"compute {config.train.compute_dtype}\n"
          f"params: {params} ({params * 4 / MIB:.1f} MiB float32)\n"
          f"batch_stats: {batch_stats}\n"
          f"forward flops per image: {flops:.4g} ({flops / 1e9:.3f} GFLOP at {size}x{size}, batch 1; "
          f"{source})", flush=True)

    compiled, lower_s, compile_s = compile_train_step(config, model, variables, steps or 1)
    print(f"train step: global batch {config.train.batch_size} of uint8 {IMAGE_SIZE}x{IMAGE_SIZE}x3, "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s)\n"
          f"train step compile time: {lower_s + compile_s:.1f} s (lower {lower_s:.1f} s, "
          f"compile {compile_s:.1f} s)\n" + "\n".join(memory_lines(compiled)), flush=True)
    m = compiled.memory_analysis()
    return {"steps_per_epoch": steps, "params": params, "batch_stats": batch_stats, "flops": flops,
            "memory": m, "compile_s": lower_s + compile_s}
