"""Every crop rule of the original: the training crops of each data set (spec 11) and the
demo's crop of a detector box (spec 13). L0: plain Python, numpy and OpenCV, in the original's
integer and float order, so crops match its files to the pixel.

The training crops take an annotation record (pipnet_jax.data.annotations.FaceRecord, or any
object with its fields `landmarks`, `box`, `source`, `dataset`, and for reading the image
`image`, `image_path`, `image_size`); pipnet_jax.data.annotations re-exports them."""
import dataclasses

import cv2
import numpy as np

from pipnet_jax.errors import UserError
from pipnet_jax.files import ImageReadError, read_image

CROP_RULES = ('300w', '300w_gssl', 'wflw', 'wflw_gssl', 'cofw', 'cofw_gssl', 'aflw', 'lapa',
              'celeba_gssl', 'custom')


class AnnotationError(UserError, ValueError):
    """A bad annotation entry; the message starts with where it is ('file:line: ...').
    Defined here, below the data package, because the crop rules raise it too."""


def load_image(record, strict_check=None):
    """The record's image as RGB uint8 (H, W, 3): the embedded one, else read from disk
    (grey files become 3 channels, as the original's cv2.imread; a truncated JPEG is
    unreadable, see files.read_image for `strict_check`) -> AnnotationError naming the entry."""
    if record.image is not None:
        return record.image
    try:
        return read_image(str(record.image_path), record.source, strict_check)
    except ImageReadError as e:
        raise AnnotationError(str(e)) from None


@dataclasses.dataclass(frozen=True)
class CropBox:
    """box: (xmin, ymin, xmax, ymax) floats, the frame the labels are normalised by;
    pixels: (x0, y0, x1, y1) ints, the crop is image[y0:y1, x0:x1] (the original's int edges);
    landmarks: (N, 2) normalised labels, (lm - [xmin, ymin]) / [xmax - xmin, ymax - ymin] of
    the landmarks as the original uses them (300W int-truncated; WFLW, AFLW, LaPa, custom
    clipped to [0, W] x [0, H]; COFW raw)."""
    box: tuple
    pixels: tuple
    landmarks: np.ndarray = dataclasses.field(repr=False)


def _clamp(xmin, ymin, xmax, ymax, width, height):
    return max(xmin, 0), max(ymin, 0), min(xmax, width - 1), min(ymax, height - 1)


def _grow(box, width, height, scale, shift_down=False):
    """WFLW rule: (scale - 1) / 2 of the size added on each side (the top moved down instead
    for the GSSL boxes), then clamped. Arithmetic in the original's order."""
    xmin, ymin, xmax, ymax = box
    w, h = xmax - xmin, ymax - ymin
    xmin -= w * (scale - 1) / 2
    ymin = ymin + h * (scale - 1) / 2 if shift_down else ymin - h * (scale - 1) / 2
    xmax += w * (scale - 1) / 2
    ymax += h * (scale - 1) / 2
    return _clamp(xmin, ymin, xmax, ymax, width, height)


def _box_300w(landmarks, width, height, scale):
    """Spec 11.1: int-truncated points, box grown by `scale` in ints, clamped, w/h shrunk."""
    x = [int(v) for v in landmarks[:, 0]]
    y = [int(v) for v in landmarks[:, 1]]
    xmin, ymin = min(x), min(y)
    w, h = max(x) - xmin, max(y) - ymin
    xmin -= int((scale - 1) / 2 * w)
    ymin -= int((scale - 1) / 2 * h)
    w, h = int(w * scale), int(h * scale)
    xmin, ymin = max(xmin, 0), max(ymin, 0)
    w, h = min(w, width - xmin - 1), min(h, height - ymin - 1)
    return (xmin, ymin, xmin + w, ymin + h), np.array([x, y], np.float64).T


def _box_cofw(box, width, height, scale=None):
    """Spec 11.3: raw (x, y, w, h) box, xmax = x + w - 1; GSSL grows it by `scale` first."""
    x, y = box[0], box[1]
    w, h = box[2] - box[0], box[3] - box[1]
    xmin, ymin, xmax, ymax = x, y, x + w - 1, y + h - 1
    if scale is not None:
        xmin -= w * (scale - 1) / 2
        ymin -= h * (scale - 1) / 2
        xmax += w * (scale - 1) / 2
        ymax += h * (scale - 1) / 2
    return _clamp(xmin, ymin, xmax, ymax, width, height)


def _box_celeba(box, width, height):
    """Spec 11.6: inclusive int box, 1.2 wide, top moved down by (1.2 + 0.1 - 1) / 2 of h."""
    xmin, ymin, xmax, ymax = box
    w, h = xmax - xmin + 1, ymax - ymin + 1
    scale = 1.2
    xmin -= w * (scale - 1) / 2
    ymin += h * (scale + 0.1 - 1) / 2
    xmax += w * (scale - 1) / 2
    ymax += h * (scale - 1) / 2
    return _clamp(xmin, ymin, xmax, ymax, width, height)


def crop_rule(dataset):
    """The CROP_RULES name of a data set or rule name ('data_300W' -> '300w', 'cofw68' ->
    'cofw_gssl', ...)."""
    name = str(dataset).lower().removeprefix('data_')
    name = {'celeba': 'celeba_gssl', 'cofw68': 'cofw_gssl'}.get(name, name)
    if name not in CROP_RULES:
        raise ValueError(f'unknown crop rule {dataset!r}; known: {CROP_RULES}')
    return name


def record_image_size(record):
    """(width, height): record.image_size, else the embedded image, else read from disk."""
    if record.image_size is not None:
        return tuple(record.image_size)
    h, w = load_image(record).shape[:2]
    return w, h


def check_landmarks_in_image(record, landmarks, width, height) -> None:
    """Points a little outside the image are normal (faces at its edge: the crop rules clip
    them); a point a whole image size away, or not a number, is a broken label, which clipping
    would silently collapse onto the border -> AnnotationError naming the line."""
    far = ~np.isfinite(landmarks).all(axis=1) | (landmarks < -np.array([width, height])).any(axis=1) \
        | (landmarks > 2 * np.array([width, height])).any(axis=1)
    if far.any():
        k = int(np.argmax(far))
        raise AnnotationError(f'{record.source}: landmark {k} at ({landmarks[k, 0]:g}, {landmarks[k, 1]:g}) '
                              f'lies far outside the {width}x{height} image ({int(far.sum())} such '
                              f'points); expected points in or near the image')


def crop_box(record, dataset=None, image_size=None, *, scale=None):
    """The crop the original preprocessing makes for `record` under `dataset`'s rule
    (default record.dataset; CROP_RULES):

    300w / 300w_gssl  landmarks truncated to int, their bounds grown 1.1 / 1.3 in ints,
                      xmin, ymin >= 0, w <= W - xmin - 1, h <= H - ymin - 1 (spec 11.1, 11.6)
    wflw              landmarks clipped to the image; rect grown 1.2 symmetric, clamped to
                      [0, W-1] x [0, H-1]; int crop edges, float normalisation (11.2)
    wflw_gssl         as wflw with the top edge moved down by 0.1 h instead of up (11.6)
    cofw / cofw_gssl  box x, y, x + w - 1, y + h - 1 (grown 1.3 for GSSL), clamped (11.3, 11.6)
    aflw              landmarks clipped, box clamped, no enlargement (11.4)
    lapa              landmarks clipped, their bounding rect grown 1.2 as wflw (11.5, issue #41)
    celeba_gssl       detector box w = xmax - xmin + 1, 1.2 wide, top down 0.15 h (11.6)
    custom            landmarks clipped; record.box, else the landmarks' bounding rect, grown
                      `scale` (default 1.2) as wflw
    image_size (width, height) defaults to record_image_size(record). Returns a CropBox.
    """
    rule = crop_rule(dataset or record.dataset)
    if scale is not None and rule != 'custom':
        raise ValueError(f"scale applies to the 'custom' crop only, not {rule!r}")
    width, height = image_size or record_image_size(record)
    landmarks = np.asarray(record.landmarks, np.float64).reshape(-1, 2)
    check_landmarks_in_image(record, landmarks, width, height)
    clipped = np.clip(landmarks, 0, [width, height])

    def box():
        if record.box is None:
            raise AnnotationError(f'{record.source}: the {rule} crop needs a box; record has none')
        return tuple(float(v) for v in record.box)

    if rule in ('300w', '300w_gssl'):
        if not len(landmarks):
            raise AnnotationError(f'{record.source}: the 300W crop needs landmarks')
        b, landmarks = _box_300w(landmarks, width, height, 1.1 if rule == '300w' else 1.3)
    elif rule in ('wflw', 'wflw_gssl'):
        b, landmarks = _grow(box(), width, height, 1.2, rule == 'wflw_gssl'), clipped
    elif rule in ('cofw', 'cofw_gssl'):
        b = _box_cofw(box(), width, height, 1.3 if rule == 'cofw_gssl' else None)
    elif rule == 'aflw':
        b, landmarks = _clamp(*box(), width, height), clipped
    elif rule == 'celeba_gssl':
        b = _box_celeba(box(), width, height)
    else:  # lapa, custom
        if rule == 'custom' and record.box is not None:
            rect = box()
        elif len(clipped):
            rect = (*clipped.min(0).tolist(), *clipped.max(0).tolist())
        else:
            raise AnnotationError(f'{record.source}: the {rule} crop needs landmarks or a box')
        b, landmarks = _grow(rect, width, height, 1.2 if scale is None else scale), clipped
    xmin, ymin, xmax, ymax = (float(v) for v in b)
    if not (xmax > xmin and ymax > ymin):
        raise AnnotationError(f'{record.source}: empty {rule} crop box '
                              f'({xmin}, {ymin}, {xmax}, {ymax}) in a {width}x{height} image')
    normalised = (landmarks - [xmin, ymin]) / [xmax - xmin, ymax - ymin]
    return CropBox((xmin, ymin, xmax, ymax), tuple(int(v) for v in b), normalised)


def crop_face(image, record, dataset=None, out_size=256, *, scale=None):
    """Cut the original's crop from `image` (any channel order; None: load_image(record)) and
    resize it to out_size x out_size with cv2 INTER_LINEAR (aspect not kept), as the original.
    Returns (crop uint8 (out_size, out_size, C), normalised landmarks (N, 2) float64)."""
    if image is None:
        image = load_image(record)
    height, width = image.shape[:2]
    cb = crop_box(record, dataset, (width, height), scale=scale)
    x0, y0, x1, y1 = cb.pixels
    patch = image[y0:y1, x0:x1]
    if patch.size == 0:
        raise AnnotationError(f'{record.source}: crop {cb.pixels} of a {width}x{height} image '
                              f'is empty')
    crop = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    return crop, cb.landmarks


def demo_crop(box, image_size, box_scale: float = 1.2):
    """Spec 13.3: the original demo's crop for a detector box (xmin, ymin, xmax, ymax).

    Returns (xmin, ymin, xmax, ymax, width, height): the crop is image[ymin:ymax,
    xmin:xmax] and the network's [0, 1] frame maps back with x * width + xmin, where width =
    xmax - xmin + 1 (one pixel more than the crop, as in the original). The top edge moves
    DOWN by (scale - 1) / 2 of the height (forehead removed, like the training crops)."""
    img_w, img_h = image_size
    xmin, ymin = int(box[0]), int(box[1])
    w, h = int(box[2]) - xmin, int(box[3]) - ymin
    xmax, ymax = xmin + w - 1, ymin + h - 1
    # In the original's float order: 1.2 - 1 is 0.19999999999999996, so e.g. a 70 px box
    # grows by int(6.99...) = 6 px, not 7.
    dx, dy = int(w * (box_scale - 1) / 2), int(h * (box_scale - 1) / 2)
    xmin, ymin, xmax, ymax = xmin - dx, ymin + dy, xmax + dx, ymax + dy
    xmin, ymin = max(xmin, 0), max(ymin, 0)
    xmax, ymax = min(xmax, img_w - 1), min(ymax, img_h - 1)
    return xmin, ymin, xmax, ymax, xmax - xmin + 1, ymax - ymin + 1


def demo_face_crop(image: np.ndarray, box, size: int, box_scale: float = 1.2):
    """The network input for one detector box: demo_crop's region image[ymin:ymax, xmin:xmax]
    resized to size x size (INTER_LINEAR, as the training crops). Returns (crop, (xmin, ymin,
    xmax, ymax, width, height)) as demo_crop; a box that leaves no region is a ValueError."""
    xmin, ymin, xmax, ymax, w, h = demo_crop(box, (image.shape[1], image.shape[0]), box_scale)
    if xmax - xmin < 2 or ymax - ymin < 2:
        raise ValueError(f"face box {np.round(np.asarray(box[:4], np.float64), 1).tolist()} gives an "
                         f"empty crop in a {image.shape[1]}x{image.shape[0]} image")
    crop = cv2.resize(image[ymin:ymax, xmin:xmax], (size, size), interpolation=cv2.INTER_LINEAR)
    return crop, (xmin, ymin, xmax, ymax, w, h)

