"""Files: atomic writes, image reading and the constants every reader and writer shares.

L0: numpy and OpenCV only. Every file the project writes goes through `atomic_*` (temp file in
the same folder, then rename), so a reader never sees half a file and a killed job leaves
either the old file or the new one."""
import contextlib
import json
import os
import shutil
import tempfile
from typing import Callable, Iterator, Optional

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
JPEG_QUALITY = 95   # cv2.imwrite's default: what the original's crop files have
IMAGE_SIZE = 256    # side of the stored crops (the original's input size)
# STC tasks (spec 16), in the order of their int ids: which score maps a sample supervises
# (stored in pseudo-label shards, read by the pipeline, used by the masked loss)
TASKS = ("std", "cls1", "cls2", "cls3")


class ImageReadError(ValueError):
    """An image file that is missing, unreadable, not an image, or a truncated JPEG."""


def _umask_mode(mode: int) -> int:
    """`mode` less the process umask: mkstemp/mkdtemp files are private (0600/0700), but what
    we write should get the permissions any other file would."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yields a temporary file name beside `path` for a writer that wants a name (torch.save,
    a TFRecord writer); renamed onto `path` when the block ends, removed on any error."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=f"{suffix}.tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode(0o666))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json_atomic(path: str, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str) -> Iterator[str]:
    """Yields a temporary folder beside `path`; when the block ends it replaces `path` as a
    whole (an existing folder is moved aside first: os.replace cannot overwrite it)."""
    path = os.path.abspath(os.fspath(path)).rstrip(os.sep)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.")
    try:
        yield tmp
        os.chmod(tmp, _umask_mode(0o777))
        if os.path.isdir(path):
            old = tempfile.mkdtemp(dir=parent, prefix=".old.")
            os.replace(path, os.path.join(old, "x"))
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def encode_jpeg(image_rgb: np.ndarray, where: str = "image") -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.asarray(image_rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"{where}: JPEG encoding failed")
    return buf.tobytes()


def write_image_atomic(path: str, image_rgb: np.ndarray) -> None:
    """An RGB uint8 picture, encoded by the path's extension (.png, .jpg at JPEG_QUALITY)."""
    ext = os.path.splitext(path)[1].lower() or ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(np.asarray(image_rgb), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError(f"{path}: image encoding failed")
    atomic_write_bytes(path, buf.tobytes())


def jpeg_ends_cleanly(data: bytes) -> bool:
    """A JPEG cut short lacks its end-of-image marker; cv2 decodes such a file anyway (grey
    bottom rows, one warning on stderr), so callers check. Bytes after the marker are legal:
    a file that does not end with it is left to `strict_check` (data/ passes TF's decoder)."""
    return data.rstrip(b"\0\r\n\t ").endswith(b"\xff\xd9")


def is_image_file(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def read_image(path: str, where: str = "", strict_check: Optional[Callable[[bytes], bool]] = None
               ) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an image file, grey files as 3 channels (as the original's
    cv2.imread). A truncated JPEG (no end marker and `strict_check` absent or failing) is
    unreadable. Errors are ImageReadError naming `where` (e.g. the annotation line) and the file."""
    prefix = f"{where}: " if where else ""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ImageReadError(f"{prefix}cannot read image {path}: {e.strerror or e}") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    truncated = data[:2] == b"\xff\xd8" and not jpeg_ends_cleanly(data) and not (
        strict_check is not None and strict_check(data))
    if image is None or truncated:
        raise ImageReadError(f"{prefix}cannot decode image {path} (not an image, or truncated)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
