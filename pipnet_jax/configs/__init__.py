"""The experiment configs (ml_collections ConfigDicts): `common.py` holds the original's recipe,
every other module one experiment with `get_config(arg=None)`. They ship with the package, so
`--config wflw` finds them from any folder (`resolve`); the checkout's top-level `configs/`
files point here."""
import os

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
    return sorted(f[:-3] for f in os.listdir(CONFIG_DIR)
                  if f.endswith(".py") and f not in ("__init__.py", "common.py"))


def resolve(spec: str) -> str:
    """A --config value -> a file path (keeping ':arg'): a path as given, else a packaged
    config by name ('wflw', 'wflw:r101', 'configs/wflw.py' when the file is not there)."""
    path, sep, arg = str(spec).partition(":")
    if os.path.exists(path):
        return spec
    name = os.path.splitext(os.path.basename(path))[0]
    if name in names():
        return os.path.join(CONFIG_DIR, f"{name}.py") + sep + arg
    raise FileNotFoundError(f"--config {spec}: no such file, and no packaged config named {name!r} "
                            f"(packaged: {', '.join(names())})")
