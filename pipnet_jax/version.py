"""The package version and, in a git checkout, its commit: recorded in every workdir's
config.json and results.json and in export metadata, so a result names the code that made it."""
import functools
import os
import subprocess

__version__ = "0.2.0"


@functools.lru_cache(maxsize=None)
def git_commit() -> str | None:
    """HEAD of the checkout the package runs from (with '+dirty' for uncommitted changes), or
    None for an installed package."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.exists(os.path.join(root, ".git")):
        return None
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def provenance() -> dict:
    return {"pipnet_jax_version": __version__, "git_commit": git_commit()}
