"""`pipnet-jax`, the console script: one subcommand per mode of pipnet_jax.main, plus `data`.

    pipnet-jax train --config wflw --workdir runs/wflw --config.data.manual_dir=/data/WFLW
    pipnet-jax data synthetic --out /data/synthetic

`pipnet-jax MODE ARGS` is `python -m pipnet_jax.main --mode=MODE ARGS`; `pipnet-jax MODE
--help` shows what the mode does and an example."""
import importlib
import sys

# subcommand -> (what it does, an example)
COMMANDS = {
    "train": ("train a model on a data set, resuming from the workdir's latest checkpoint, then "
              "evaluate every config.evals split",
              "pipnet-jax train --config synthetic\n"
              "  pipnet-jax train --config wflw:r101 --workdir runs/wflw_r101 --config.data.manual_dir=/data/WFLW"),
    "eval": ("evaluate the workdir's latest checkpoint (or a PyTorch .pth) on every config.evals split",
             "pipnet-jax eval --config wflw --workdir runs/wflw\n"
             "  pipnet-jax eval --config wflw --config.eval.torch_checkpoint=epoch59.pth"),
    "predict": ("landmarks for an image, a folder of images or a video, with overlays and "
                "landmarks.json / .csv",
                "pipnet-jax predict --config synthetic --config.predict.input=photos/"),
    "stc": ("self-training with curriculum: teacher, pseudo-labels, students (STC configs)",
            "pipnet-jax stc --config stc_synthetic"),
    "stc_study": ("STC against its baselines (teacher = equal-step control, curriculum vs 'std' "
                  "rounds) over seeds, with a summary table (study.md)",
                  "pipnet-jax stc_study --config stc_scarce"),
    "label": ("pseudo-label an unlabeled corpus with the workdir's model (resumable, sharded over "
              "processes), without training",
              "pipnet-jax label --config synthetic --workdir workdirs/synthetic "
              "--config.label.corpus.images=/data/face_crops"),
    "export": ("export the workdir's model (jax, saved_model, tflite, onnx)",
               "pipnet-jax export --config synthetic --config.export.format=tflite "
               "--config.export.batch_size=1"),
    "bench": ("inference benchmark: JAX against the PyTorch reference (needs torch)",
              "pipnet-jax bench --config wflw"),
    "demo": ("a random PIPNet on a generated face: forward + decode, parity report against PyTorch",
             "pipnet-jax demo --config synthetic"),
    "dry_run": ("what a training run would take (config, data sizes, steps per epoch, "
                "parameters, FLOPs, the compiled train step's memory), training and writing nothing",
                "pipnet-jax dry_run --config wflw:r101 --workdir runs/wflw_r101"),
    "data": ("build a TFDS set from a raw data set, or generate synthetic faces",
             "pipnet-jax data build --help\n  pipnet-jax data synthetic --out /data/synthetic"),
}
# `pipnet-jax data WHAT` -> the module whose main(argv) does it (imported on use: TensorFlow)
DATA_COMMANDS = {"build": "pipnet_jax.data.builders", "synthetic": "pipnet_jax.data.synthetic.writer"}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: pipnet-jax COMMAND [--config NAME_OR_FILE] [--workdir DIR] [--config.FIELD=VALUE ...]",
             "", "commands:"]
    lines += [f"  {name:<{width}}  {what}" for name, (what, _) in COMMANDS.items()]
    lines += ["", "pipnet-jax COMMAND --help shows an example; --config takes a packaged config's name "
              "(wflw, wflw:r101, synthetic, ...) or a file."]
    return "\n".join(lines)


def command_help(name: str) -> str:
    what, example = COMMANDS[name]
    if name == "data":
        return f"pipnet-jax data {{{','.join(DATA_COMMANDS)}}} ...: {what}\n\nexample:\n  {example}"
    return (f"pipnet-jax {name} --config NAME_OR_FILE [--workdir DIR] [--config.FIELD=VALUE ...]\n\n"
            f"{what}.\n\nexample:\n  {example}\n\n--workdir defaults to workdirs/<config name>; "
            f"every config field can be overridden (python -m pipnet_jax.main --helpfull lists "
            f"the flags).")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"pipnet-jax: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    if name == "data":
        if not rest or rest[0] in ("-h", "--help"):
            print(command_help("data"))
            return 0
        if rest[0] not in DATA_COMMANDS:
            print(f"pipnet-jax data: unknown command {rest[0]!r}\n\n{command_help('data')}", file=sys.stderr)
            return 2
        # the data tools import TensorFlow: loaded only for this command
        module = importlib.import_module(DATA_COMMANDS[rest[0]])
        module.main(rest[1:])
        return 0
    if any(a in ("-h", "--help") for a in rest):
        print(command_help(name))
        return 0
    main_module = importlib.import_module("pipnet_jax.main")  # absl flags: defined on import
    main_module.run([f"pipnet-jax {name}", f"--mode={name}", *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main())
