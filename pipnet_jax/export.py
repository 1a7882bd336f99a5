"""Export a PIPNet for inference: uint8 RGB NHWC crops -> (landmarks (B, N, 2) in [0, 1],
confidence (B, N)), normalisation, network and neighbour-vote decode in one graph.

Formats:
  jax          a serialized `jax.export` artifact (StableHLO); needs only jax to run.
  saved_model  a TensorFlow SavedModel made by jax2tf; signature `serving_default`,
               input `images`, outputs `landmarks` and `confidence`.
  tflite       that graph converted to TFLite, float32, TFLITE_BUILTINS ops only.
  onnx         ONNX by jax2onnx (export_onnx.py), run by ONNX Runtime; --onnx_layout
               end_to_end (default: this contract, input `images`) or compat (normalised
               float32 NCHW in, the five raw heads out as the community's PIPNet ONNX files).

Each export also writes `<path>.json` saying what the artifact is. The batch dimension is
symbolic (any batch size) unless batch_size is given. The weights are embedded as constants.
TensorFlow is imported only by the SavedModel/TFLite functions (optional exporters); the
SavedModel/TFLite graph decodes with decode.graph_decoder, the jax artifact with the jitted
decoder of the predict function evaluation uses. jax2onnx, onnx and onnxruntime are imported
only by export_onnx.py's functions (requirements-onnx.txt).

    python -m pipnet_jax.export --workdir workdirs/wflw --format tflite --out wflw.tflite
    python -m pipnet_jax.export --torch_checkpoint epoch59.pth --num_landmarks 98 \\
        --backbone resnet18 --meanface meanface.txt --format jax --out wflw_r18.jax
    python -m pipnet_jax.export --workdir workdirs/wflw --format onnx --out wflw.onnx
"""
import argparse
import json
import os
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from pipnet_jax import export_onnx as onnx_format
from pipnet_jax.checkpoint import CheckpointError
from pipnet_jax.decode import graph_decoder
from pipnet_jax.files import atomic_dir, atomic_write_bytes, write_json_atomic
from pipnet_jax.images import normalize_images
from pipnet_jax.inference import make_predict_fn
from pipnet_jax.workdir import load_model, load_torch_model
from pipnet_jax.version import provenance

FORMATS = ("jax", "saved_model", "tflite", "onnx")
__all__ = ["FORMATS", "export_jax", "export_onnx", "export_saved_model", "export_tflite",
           "graph_decoder", "load_jax", "load_onnx", "load_saved_model", "load_tflite", "main",
           "metadata_path", "read_metadata", "run_export"]


# --------------------------------------------------------------------------- helpers
def metadata_path(path: str) -> str:
    return os.path.abspath(path).rstrip(os.sep) + ".json"


def _write_metadata(path, fmt, model, neighbors, input_size, batch_size, **extra) -> dict:
    meta = {"format": fmt, "num_landmarks": model.num_landmarks, "backbone": model.backbone,
            "num_neighbors": model.num_neighbors, "net_stride": model.net_stride,
            "input_size": input_size, "neighbors_shape": list(np.shape(neighbors)),
            "batch_size": batch_size if batch_size else "any",
            "input": f"uint8 RGB images (B, {input_size}, {input_size}, 3), face crops",
            "outputs": {"landmarks": "float32 (B, N, 2), x/width and y/height of the crop",
                        "confidence": "float32 (B, N), the heatmap score at the chosen cell"},
            "jax_version": jax.__version__, **provenance(), **extra}
    write_json_atomic(metadata_path(path), meta)
    return meta


def read_metadata(path: str) -> dict:
    with open(metadata_path(path)) as f:
        return json.load(f)


def _check_images(images, input_size: int, batch_size=None) -> np.ndarray:
    """Refuses anything but uint8 (B, S, S, 3): float images (0..1 or normalised) would run
    without error and give meaningless landmarks."""
    if not hasattr(images, "shape"):  # lists; jax arrays stay where they are (no host copy)
        images = np.asarray(images)
    want = f"({batch_size or 'B'}, {input_size}, {input_size}, 3)"
    if (images.dtype != np.uint8 or images.ndim != 4
            or images.shape[1:] != (input_size, input_size, 3)
            or (batch_size and images.shape[0] != batch_size) or images.shape[0] == 0):
        raise ValueError(f"this exported PIPNet expects uint8 RGB images of shape {want}; got "
                         f"{images.dtype} {images.shape} (resize the face crop to "
                         f"{input_size}x{input_size}, keep 0..255 values)")
    return images


def _check_neighbors(model, neighbors) -> np.ndarray:
    neighbors = np.asarray(neighbors)
    if neighbors.shape != (model.num_landmarks, model.num_neighbors):
        raise ValueError(f"neighbor table has shape {neighbors.shape}; the model needs "
                         f"({model.num_landmarks}, {model.num_neighbors})")
    return neighbors


# --------------------------------------------------------------------------- jax.export
def export_jax(path: str, model, variables, neighbors, input_size: int = 256,
               batch_size=None, platforms=("cpu",)) -> dict:
    """Serializes the jitted predict function (the same one evaluation uses) with the
    variables baked in. platforms may add 'cuda'/'tpu': one artifact, lowered per platform,
    runs where it is loaded. Returns the metadata written to <path>.json."""
    neighbors = _check_neighbors(model, neighbors)
    predict = make_predict_fn(model, neighbors, input_size)
    batch = jax.export.symbolic_shape("b")[0] if batch_size is None else batch_size
    spec = jax.ShapeDtypeStruct((batch, input_size, input_size, 3), jnp.uint8)
    exported = jax.export.export(jax.jit(lambda images: predict(variables, images)),
                                 platforms=tuple(platforms))(spec)
    atomic_write_bytes(path, exported.serialize())
    return _write_metadata(path, "jax", model, neighbors, input_size, batch_size,
                           platforms=list(exported.platforms))


def load_jax(path: str):
    """-> fn(uint8 images) -> (landmarks, confidence) as jax arrays (no TensorFlow needed)."""
    with open(path, "rb") as f:
        exported = jax.export.deserialize(bytearray(f.read()))
    shape = exported.in_avals[0].shape
    batch = shape[0] if isinstance(shape[0], int) else None
    call = jax.jit(exported.call)  # compile once per batch size, not per call

    def predict(images):
        return call(_check_images(images, shape[1], batch))

    return predict


# --------------------------------------------------------------------------- TensorFlow
def _tf_module(model, variables, neighbors, input_size, batch_size, platforms=("cpu",)):
    """tf.Module with `serve(images)` -> {'landmarks', 'confidence'} made by jax2tf."""
    import tensorflow as tf  # optional exporter: TensorFlow only here
    from jax.experimental import jax2tf  # optional exporter: imports TensorFlow

    neighbors = _check_neighbors(model, neighbors)
    decode = graph_decoder(neighbors, model.net_stride, input_size)

    def infer(images):
        landmarks, confidence = decode(model.apply(variables, normalize_images(images, input_size)))
        return {"landmarks": landmarks, "confidence": confidence}

    poly = None if batch_size else [f"(b, {input_size}, {input_size}, 3)"]
    converted = jax2tf.convert(infer, polymorphic_shapes=poly, with_gradient=False,
                               native_serialization_platforms=tuple(platforms))
    module = tf.Module()
    spec = tf.TensorSpec((batch_size, input_size, input_size, 3), tf.uint8, name="images")
    # The lambda names the signature's input `images` (jax2tf would call it args_tf_0).
    module.serve = tf.function(lambda images: converted(images), autograph=False,
                               input_signature=[spec])
    return module


def export_saved_model(path: str, model, variables, neighbors, input_size: int = 256,
                       batch_size=None, platforms=("cpu",)) -> dict:
    """SavedModel folder at `path` (replaced as a whole: written beside it, then renamed).
    platforms: where TF may run it ('cpu', 'cuda', 'tpu'); the graph is StableHLO inside an
    XlaCallModule op, checked against the platform it runs on."""
    import tensorflow as tf  # optional exporter: TensorFlow only here

    module = _tf_module(model, variables, neighbors, input_size, batch_size, platforms)
    with atomic_dir(path) as tmp:
        tf.saved_model.save(module, tmp, signatures={
            "serving_default": module.serve.get_concrete_function()})
    return _write_metadata(path, "saved_model", model, neighbors, input_size, batch_size,
                           platforms=list(platforms), tensorflow_version=tf.__version__)


def load_saved_model(path: str):
    """-> fn(uint8 images) -> (landmarks, confidence) as numpy arrays, via TensorFlow."""
    import tensorflow as tf  # optional exporter: TensorFlow only here

    serve = tf.saved_model.load(path).signatures["serving_default"]
    shape = serve.structured_input_signature[1]["images"].shape

    def predict(images):
        out = serve(images=tf.constant(_check_images(images, shape[1], shape[0])))
        return out["landmarks"].numpy(), out["confidence"].numpy()

    return predict


def export_tflite(path: str, model, variables, neighbors, input_size: int = 256,
                  batch_size=None) -> dict:
    """float32 .tflite with builtin ops only (runs on the plain TFLite/LiteRT runtime, and
    XNNPACK takes the convolutions). Converted from the same jax2tf graph as the SavedModel."""
    import tensorflow as tf  # optional exporter: TensorFlow only here

    module = _tf_module(model, variables, neighbors, input_size, batch_size)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module)
    # SELECT_TF_OPS would not help: the legalizer fails on StableHLO, not on missing TF ops.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    atomic_write_bytes(path, converter.convert())
    return _write_metadata(path, "tflite", model, neighbors, input_size, batch_size,
                           ops="TFLITE_BUILTINS", tensorflow_version=tf.__version__)


def _interpreter_class():
    # optional runtime: the TFLite interpreter is imported only where a .tflite is loaded
    try:  # LiteRT, TFLite's successor, when installed
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        import tensorflow as tf  # optional exporter: TensorFlow only here
        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    return Interpreter, OpResolverType


def load_tflite(path: str, num_threads=None, xnnpack: bool = True):
    """-> fn(uint8 images) -> (landmarks, confidence) as numpy arrays, via the TFLite
    interpreter (num_threads default: all CPUs). xnnpack=False drops the default XNNPACK
    delegate (for comparison). The input is resized when the batch size changes."""
    Interpreter, OpResolverType = _interpreter_class()
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with warnings.catch_warnings():  # tf.lite.Interpreter's "use ai_edge_litert" notice
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_path=path, num_threads=num_threads or os.cpu_count(),
                                  experimental_op_resolver_type=resolver)
    # Outputs come in converter order; the signature maps them to their names.
    runner = interpreter.get_signature_runner("serving_default")
    inp = runner.get_input_details()["images"]
    outs = runner.get_output_details()
    size = int(inp["shape_signature"][1])
    fixed = int(inp["shape_signature"][0]) if inp["shape_signature"][0] > 0 else None
    current = [None]

    def predict(images):
        images = np.asarray(_check_images(images, size, fixed))
        if current[0] != images.shape:
            interpreter.resize_tensor_input(inp["index"], images.shape, strict=True)
            interpreter.allocate_tensors()
            current[0] = images.shape
        interpreter.set_tensor(inp["index"], images)
        interpreter.invoke()
        return (interpreter.get_tensor(outs["landmarks"]["index"]),
                interpreter.get_tensor(outs["confidence"]["index"]))

    predict.input_size = size
    return predict


# --------------------------------------------------------------------------- ONNX
def export_onnx(path: str, model, variables, neighbors, input_size: int = 256, batch_size=None,
                layout: str = "end_to_end", opset: int = onnx_format.DEFAULT_OPSET) -> dict:
    """An .onnx file (weights inside) in one of onnx_format.LAYOUTS, converted by jax2onnx and
    simplified (BatchNorm folded; standard ONNX ops only). Returns the metadata written to
    <path>.json (compat: with the neighbour table and normalisation a runtime needs)."""
    if layout not in onnx_format.LAYOUTS:
        raise ValueError(f"unknown ONNX layout {layout!r}; expected one of {onnx_format.LAYOUTS}")
    neighbors = _check_neighbors(model, neighbors)
    atomic_write_bytes(path, onnx_format.convert(model, variables, neighbors, input_size,
                                                 batch_size, layout, opset))
    return _write_metadata(path, "onnx", model, neighbors, input_size, batch_size,
                           **onnx_format.layout_metadata(layout, neighbors, input_size, opset))


def load_onnx(path: str, num_threads=None, optimization: str = "all", providers=None):
    """-> fn(uint8 images) -> (landmarks, confidence) as numpy arrays, via ONNX Runtime (no
    TensorFlow, no jit). A compat file gives fn(normalised float32 NCHW) -> the five raw heads
    (NCHW numpy). num_threads default: ONNX Runtime's; optimization: the graph optimisation
    level at load ('all' is the fastest on CPU here, see the README's benchmark)."""
    sess = onnx_format.session(path, num_threads, optimization, providers)
    inp = sess.get_inputs()[0]
    layout = onnx_format.layout_of(sess)
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None
    size = int(inp.shape[2])

    def predict(images):
        return tuple(sess.run(None, {inp.name: np.asarray(_check_images(images, size, fixed))}))

    def predict_raw(x):
        x = np.asarray(x)
        want = (3, size, size)
        if x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != want or x.shape[0] == 0 \
                or (fixed and x.shape[0] != fixed):
            raise ValueError(f"this compat PIPNet ONNX expects normalised float32 NCHW images of "
                             f"shape ({fixed or 'B'}, {', '.join(map(str, want))}); got "
                             f"{x.dtype} {x.shape}")
        return tuple(sess.run(None, {inp.name: x}))

    run = predict if layout == "end_to_end" else predict_raw
    run.input_size, run.layout = size, layout
    return run


# --------------------------------------------------------------------------- CLI
def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m pipnet_jax.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="training workdir (config.json, meanface.txt, checkpoints/)")
    src.add_argument("--torch_checkpoint", help="PyTorch .pth instead of a workdir")
    p.add_argument("--format", choices=FORMATS, required=True)
    p.add_argument("--out", required=True, help="output file (SavedModel: folder)")
    p.add_argument("--batch_size", type=int, default=None, help="fixed batch; default: any")
    p.add_argument("--platforms", default="cpu", help="jax/saved_model: e.g. cpu,cuda")
    p.add_argument("--onnx_layout", choices=onnx_format.LAYOUTS, default="end_to_end",
                   help="onnx: uint8 in, landmarks out (default); or compat: the raw heads")
    p.add_argument("--onnx_opset", type=int, default=onnx_format.DEFAULT_OPSET, help="onnx opset")
    g = p.add_argument_group("with --torch_checkpoint")
    g.add_argument("--num_landmarks", type=int)
    g.add_argument("--backbone", default="resnet18")
    g.add_argument("--meanface", help="the model's meanface.txt")
    g.add_argument("--num_neighbors", type=int, default=10)
    g.add_argument("--net_stride", type=int, default=32)
    g.add_argument("--input_size", type=int, default=256)
    args = p.parse_args(argv)
    if args.torch_checkpoint and not (args.num_landmarks and args.meanface):
        p.error("--torch_checkpoint needs --num_landmarks and --meanface")
    if args.batch_size is not None and args.batch_size < 1:
        p.error(f"--batch_size {args.batch_size}: expected a batch size >= 1, or no --batch_size "
                f"for any batch")
    return args


def main(argv=None) -> dict:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.workdir:
        loaded = load_model(a.workdir)
    else:  # a meanface with another point count than --num_landmarks is refused, naming the file
        loaded = load_torch_model(a.torch_checkpoint, backbone=a.backbone, meanface=a.meanface,
                                  num_neighbors=a.num_neighbors, net_stride=a.net_stride,
                                  input_size=a.input_size, num_landmarks=a.num_landmarks)
    model, variables, input_size = loaded.model, loaded.variables, loaded.input_size
    neighbors = loaded.neighbors
    platforms = tuple(a.platforms.split(","))
    args = (a.out, model, variables, neighbors, input_size, a.batch_size)
    if a.format == "jax":
        meta = export_jax(*args, platforms=platforms)
    elif a.format == "saved_model":
        meta = export_saved_model(*args, platforms=platforms)
    elif a.format == "onnx":
        meta = export_onnx(*args, layout=a.onnx_layout, opset=a.onnx_opset)
    else:
        meta = export_tflite(*args)
    kind = f"onnx {a.onnx_layout}" if a.format == "onnx" else a.format
    print(f"wrote {a.out} ({kind}: PIPNet {model.backbone}, {model.num_landmarks} landmarks, "
          f"{input_size}x{input_size}, batch {meta['batch_size']}) and {metadata_path(a.out)}")
    return meta


DEFAULT_NAMES = {"jax": "pipnet.jaxexport", "saved_model": "saved_model", "tflite": "pipnet.tflite",
                 "onnx": "pipnet.onnx"}


def run_export(config, workdir: str) -> dict:
    """`--mode=export` of pipnet_jax.main: main() on the workdir with config.export's format,
    out (empty: <workdir>/export/pipnet.<ext>, SavedModel: <workdir>/export/saved_model),
    batch_size (0: any), platforms, and onnx_layout / onnx_opset where the section has them."""
    e = config.export
    out = e.out or os.path.join(workdir, "export", DEFAULT_NAMES[e.format])
    argv = ["--workdir", workdir, "--format", e.format, "--out", out, "--platforms", e.platforms]
    argv += ["--batch_size", str(e.batch_size)] if e.batch_size else []
    argv += [arg for key in ("onnx_layout", "onnx_opset") if e.get(key)
             for arg in (f"--{key}", str(e.get(key)))]
    return main(argv)


if __name__ == "__main__":
    try:
        main()
    except (CheckpointError, FileNotFoundError, ValueError) as e:  # the message says what to do
        sys.exit(f"error: {e}")
