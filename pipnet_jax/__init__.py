"""PIPNet (Pixel-in-Pixel Net, Jin, Liao, Shao, IJCV 2021) for facial landmarks in JAX/Flax.

    from pipnet_jax import Predictor, PIPNet, load_torch_checkpoint

The top-level names load on first use (PEP 562), so `import pipnet_jax.files` or the data
pipeline do not pull in JAX and Flax."""
import importlib

from pipnet_jax.version import __version__  # noqa: F401

_LAZY = {"Predictor": "pipnet_jax.inference", "PIPNet": "pipnet_jax.models",
         "load_torch_checkpoint": "pipnet_jax.torch_port", "load_model": "pipnet_jax.workdir",
         "load_torch_model": "pipnet_jax.workdir"}
__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)  # lazy: see the docstring
    raise AttributeError(f"module 'pipnet_jax' has no attribute {name!r}")
