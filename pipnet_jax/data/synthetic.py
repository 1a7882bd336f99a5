"""Procedural faces in the raw WFLW format: the project's embedded default data set.

A face is a parametric 98-point WFLW shape (identity, expression, pose on a cylinder head)
drawn with a few anti-aliased cv2 fills over a cluttered background, then degraded (lighting,
occluders, blur, noise). The files follow WFLW's layout byte for byte, so every WFLW code path
(parser, crop rule, TFDS builder, evaluation subsets) runs on them unchanged:

  root/WFLW_images/synthetic/{train,test}_NNNNN.jpg
  root/WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt

Canonical units are those of PIPNet's WFLW crop frame (spec 11.2; the neutral shape is close to
the released WFLW meanface) shifted so that the origin is the centre of the eye line: jaw at
x = +-0.42, brows at y ~ -0.09, chin at y ~ 0.5, crop centre at (0, 0.1).

Styles (`style`): 'a' is the default domain; 'b' is a deliberately different one for
domain-shift experiments (larger yaw/roll, strong side light at low contrast, a muted, darker
palette with striped backgrounds, more and larger occluders, more and stronger blur). See STYLES.

No TensorFlow or JAX here: worker processes start fast, and the generator runs anywhere.
"""
import argparse
import colorsys
import dataclasses
import json
import math
import multiprocessing
import os
import pathlib
from statistics import NormalDist

import cv2
import numpy as np
from tqdm import tqdm

VERSION = 1  # bump when the generator's output changes: existing data sets then get rewritten
NUM_LANDMARKS = 98
ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")
SPLITS = ("train", "test")
IMAGE_SUBDIR = "synthetic"
ANNOTATION_DIR = "WFLW_annotations/list_98pt_rect_attr_train_test"
INFO_FILE = "synthetic_info.json"
JPEG_QUALITY = 95
# Rect = landmark box grown by these fractions of its width/height (left, top, right, bottom),
# tuned so that the mean face of the crops PIPNet takes from it (spec 11.2) matches WFLW's.
RECT_MARGINS = (-0.01, 0.27, -0.01, -0.01)
OCCLUDED_POINTS_FOR_FLAG = 3  # an occluder that hides fewer landmarks does not count

# WFLW flip permutation (spec 10.1), kept here rather than imported from pipnet_jax.landmarks,
# which imports JAX: data workers should not pay for that.
WFLW_FLIP = np.array([int(v) for v in (
    "32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17 16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 "
    "46 45 44 43 42 50 49 48 47 37 36 35 34 33 41 40 39 38 51 52 53 54 59 58 57 56 55 "
    "72 71 70 69 68 75 74 73 64 63 62 61 60 67 66 65 82 81 80 79 78 77 76 87 86 85 84 83 "
    "92 91 90 89 88 95 94 93 97 96").split()])

# Points built explicitly; the rest are their mirror images, so the neutral face is exactly
# symmetric under the flip table by construction.
_LEFT = np.r_[0:16, 33:42, 55, 56, 60:68, 76, 77, 78, 86, 87, 88, 89, 95, 96]
_CENTRE = np.array([16, 51, 52, 53, 54, 57, 79, 85, 90, 94])

# Neutral identity and expression (values read off the WFLW meanface).
_NEUTRAL = dict(
    jaw_w=0.416, jaw_top=-0.01, chin=0.505, jaw_n=2.2,
    brow_out_x=-0.315, brow_in_x=-0.083, brow_out_y=-0.049, brow_in_y=-0.0615,
    brow_arch=0.022, brow_th=0.03,
    eye_x=-0.18, eye_y=0.009, eye_hw=0.077, eye_tilt=0.002, eye_up=0.025, eye_lo=0.015,
    nose_len=0.212, nose_w=0.093,
    mouth_y=0.295, mouth_w=0.16, mouth_curve=0.012, lip_up=0.02, lip_lo=0.039,
    mouth_open=0.0, smile=0.0, brow_raise=0.0, eye_closure=0.0, gaze_x=0.0, gaze_y=0.0,
)

# Protrusion above the head cylinder: yaw moves the nose tip more than the eyes.
_DEPTH = np.zeros(NUM_LANDMARKS)
_DEPTH[33:51] = 0.02
_DEPTH[51:55] = [0.03, 0.06, 0.09, 0.13]
_DEPTH[55:60] = [0.04, 0.07, 0.09, 0.07, 0.04]
_DEPTH[60:76] = -0.01
_DEPTH[76:96] = 0.03
_DEPTH[[76, 82]] = 0.0
_JAW = np.zeros(NUM_LANDMARKS, bool)
_JAW[0:33] = True
_JAW_STEPS = np.r_[0.0, np.cumsum(1 + 0.27 * np.arange(16) / 15)]
_JAW_STEPS /= _JAW_STEPS[-1]
_PIVOT = np.array([0.0, 0.1])  # centre of the PIPNet crop: rotation and placement pivot

_GAUSS = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], np.float32)
SHIFT = 4  # cv2 fractional bits: sub-pixel accurate, anti-aliased drawing
_ONE = 1 << SHIFT


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

def _shape(p):
    """98 canonical-unit points for a parameter dict (identity + expression), before pose."""
    s = np.zeros((NUM_LANDMARKS, 2))
    # Jaw: superellipse from the left jaw top to the chin, resampled by arc length with steps
    # growing 27% towards the chin, as in the WFLW meanface. An open mouth drops the chin.
    th = np.linspace(0.0, np.pi / 2, 256)
    e = 2.0 / p["jaw_n"]
    x = -p["jaw_w"] * np.cos(th) ** e
    y = p["jaw_top"] + (p["chin"] + 0.7 * p["mouth_open"] - p["jaw_top"]) * np.sin(th) ** e
    arc = np.r_[0.0, np.cumsum(np.hypot(np.diff(x), np.diff(y)))]
    t = arc[-1] * _JAW_STEPS
    s[0:17] = np.stack([np.interp(t, arc, x), np.interp(t, arc, y)], 1)

    # Left brow: upper arc outer tip -> inner end (33-37), lower arc back (38-41).
    t = np.linspace(0.0, 1.0, 5)
    bx = p["brow_out_x"] + t * (p["brow_in_x"] - p["brow_out_x"])
    by = (p["brow_out_y"] + t * (p["brow_in_y"] - p["brow_out_y"]) - p["brow_raise"]
          - (p["brow_arch"] + 0.5 * p["brow_raise"]) * np.sin(np.pi * t) ** 0.6)
    half = 0.5 * p["brow_th"]
    s[33:38] = np.stack([bx, by - half * (t > 0)], 1)  # the outer tip is a single point
    s[38:42] = np.stack([bx[:0:-1], by[:0:-1] + half], 1)

    # Left eye: 60 outer corner, 61-63 upper lid, 64 inner corner, 65-67 lower lid back.
    ex = p["eye_x"] - p["eye_hw"] + 2 * p["eye_hw"] * t
    base = p["eye_y"] - p["eye_tilt"] + 2 * p["eye_tilt"] * t
    lid = (1 - (2 * t - 1) ** 2) ** 0.8 * (1 - p["eye_closure"])
    up, lo = base - p["eye_up"] * lid, base + p["eye_lo"] * lid
    s[60:65] = np.stack([ex, up], 1)
    s[65:68] = np.stack([ex[3:0:-1], lo[3:0:-1]], 1)
    s[96] = [p["eye_x"], 0.5 * (up[2] + lo[2])]

    # Nose: bridge 51-54 down the midline, bottom 55-57 (left half).
    n = p["nose_len"]
    s[51:55] = np.stack([np.zeros(4), np.linspace(0.0, 0.8 * n, 4)], 1)
    s[55:58] = [[-p["nose_w"], 0.935 * n], [-0.5 * p["nose_w"], 0.97 * n], [0.0, n]]

    # Mouth as functions of u in [-1, 1] across it: the lip seam bends up at the corners
    # with a smile, the opening is zero at the inner corners (u = +-0.93).
    sm, mw = p["smile"], p["mouth_w"] * (1 + 2 * p["smile"])
    seam = lambda u: p["mouth_y"] + p["mouth_curve"] * (1 - u * u) - sm * u * u
    gap = lambda u: 0.5 * p["mouth_open"] * np.clip(1 - (u / 0.93) ** 2, 0, 1) ** 0.6
    u = np.array([-1.0, -0.625, -0.175, 0.0])  # outer upper: 76 corner .. 79 middle
    s[[76, 77, 78, 79]] = np.stack(
        [mw * u, seam(u) - gap(u) - p["lip_up"] * np.sqrt(1 - u * u)], 1)
    u = np.array([0.0, -0.39, -0.74])  # outer lower: 85 middle, 86, 87
    s[[85, 86, 87]] = np.stack([mw * u, seam(u) + gap(u) + p["lip_lo"] * np.sqrt(1 - u * u)], 1)
    u = np.array([-0.93, -0.47, 0.0])  # inner upper: 88 corner, 89, 90 middle
    s[[88, 89, 90]] = np.stack([mw * u, seam(u) - gap(u)], 1)
    u = np.array([0.0, -0.48])  # inner lower: 94 middle, 95
    s[[94, 95]] = np.stack([mw * u, seam(u) + gap(u)], 1)

    s[_CENTRE, 0] = 0.0
    s[WFLW_FLIP[_LEFT]] = s[_LEFT] * [-1.0, 1.0]
    # Gaze moves both pupils the same way (so it is not mirrored with the rest).
    s[96:98] += [p["gaze_x"] * 0.45 * p["eye_hw"],
                 p["gaze_y"] * 0.3 * (p["eye_up"] + p["eye_lo"]) * (1 - p["eye_closure"])]
    return s


def _pose(points, depth, contour, yaw, pitch, roll, radius):
    """Rotates canonical points on a vertical-cylinder head and projects orthographically.

    Yaw turns each point about the cylinder axis; contour points stop at the silhouette
    (+-90 degrees), as annotators put the far jaw line on the visible face boundary. Pitch
    tilts about the crop centre, roll rotates in the image plane. Angles in radians; zero
    pose is the identity.
    """
    x, y = points[:, 0], points[:, 1]
    r = np.maximum(radius, np.abs(x)) + depth
    phi = np.arcsin(np.clip(x / r, -1.0, 1.0)) + yaw
    phi = np.where(contour, np.clip(phi, -np.pi / 2, np.pi / 2), phi)
    x = r * np.sin(phi)
    z = r * np.cos(phi) - radius  # relative to the face front, so pitch keeps the face in place
    y = (y - _PIVOT[1]) * np.cos(pitch) - z * np.sin(pitch)
    c, s = np.cos(roll), np.sin(roll)
    return np.stack([c * x - s * y, s * x + c * y], 1) + _PIVOT


def _radius(p):
    return 1.08 * p["jaw_w"]  # head cylinder slightly wider than the jaw top: the ears' plane


def face_shape(yaw=0.0, pitch=0.0, roll=0.0, mouth_open=0.0, smile=0.0, brow_raise=0.0,
               eye_closure=0.0, gaze=(0.0, 0.0)):
    """The average identity's 98 WFLW points in canonical units -> (98, 2) float64.

    Angles in degrees; mouth_open, smile and brow_raise in canonical units (a wide-open mouth
    is ~0.2), eye_closure in [0, 1], gaze in [-1, 1]^2. Mirroring x and re-indexing with
    WFLW_FLIP gives the face with yaw, roll and gaze[0] negated: the geometry is consistent
    with the flip augmentation.
    """
    p = dict(_NEUTRAL, mouth_open=mouth_open, smile=smile, brow_raise=brow_raise,
             eye_closure=eye_closure, gaze_x=gaze[0], gaze_y=gaze[1])
    return _pose(_shape(p), _DEPTH, _JAW, *np.radians([yaw, pitch, roll]), _radius(p))


def canonical_shape():
    """The neutral frontal face (98, 2) in canonical units; exactly symmetric under WFLW_FLIP."""
    return face_shape()


def _sample_shape_params(rng):
    """Random identity (proportions) and expression around the neutral face."""
    u = rng.uniform
    p = dict(_NEUTRAL)
    for key, rel in (("jaw_w", .08), ("chin", .08), ("eye_x", .07), ("eye_hw", .12),
                     ("eye_up", .25), ("eye_lo", .25), ("nose_len", .12), ("nose_w", .15),
                     ("mouth_y", .06), ("mouth_w", .12), ("lip_up", .35), ("lip_lo", .35),
                     ("brow_arch", .4), ("brow_th", .35)):
        p[key] *= 1 + rel * u(-1, 1)
    p["jaw_n"] = u(1.9, 2.7)  # round to square jaw
    p["jaw_top"] += u(-0.02, 0.02)
    dy = u(-0.015, 0.015)
    p["brow_out_y"] += dy + u(-0.01, 0.01)
    p["brow_in_y"] += dy
    p["brow_in_x"] += u(-0.015, 0.015)
    p["brow_out_x"] += u(-0.02, 0.02)
    p["eye_y"] += u(-0.01, 0.01)
    p["eye_tilt"] = u(-0.006, 0.012)
    p["mouth_curve"] = u(0.0, 0.02)
    if u() < 0.3:  # exaggerated expression (WFLW's "expression" subset)
        p["mouth_open"] = u(0.06, 0.24) if u() < 0.7 else u(0.0, 0.04)
        p["smile"] = u(0.0, 0.05)
        p["brow_raise"] = u(0.0, 0.05) if u() < 0.5 else 0.0
    else:
        p["mouth_open"] = 0.0 if u() < 0.6 else u(0.0, 0.04)
        p["smile"] = u(-0.01, 0.02)
        p["brow_raise"] = u(-0.01, 0.015)
    p["eye_closure"] = u(0.6, 1.0) if u() < 0.08 else u(0.0, 0.3)
    p["gaze_x"], p["gaze_y"] = u(-0.7, 0.7, 2)
    return p


@dataclasses.dataclass(frozen=True)
class Style:
    """The knobs of a style's random distributions (angles in degrees)."""
    yaw: tuple = (0.25, 15, 65)    # (probability of the uniform +-max tail, normal sd, max)
    pitch: tuple = (8, 25)         # (normal sd, max)
    roll: tuple = (0.2, 10, 50)    # as yaw
    skin: tuple = (0.75, (0.02, 0.1), (0.2, 0.6), (0.3, 0.95))  # P(tone), hue, sat., value
    palette: tuple = ((0.0, 1.0), (0.05, 1.0))  # saturation, value of all other colours
    occluders: tuple = (0.35, 0.75, 2)  # P(any), P(one | any), count otherwise
    occluder_size: tuple = (0.12, 0.45)  # x the crop side
    blur: tuple = (0.22, (0.035, 0.08), (0.0, 0.015))  # P(blur), sigma if blurred, else
    harsh: bool = False  # striped backgrounds, strong side light, low contrast, more noise


STYLES = {
    "a": Style(),
    "b": Style(yaw=(0.5, 30, 85), pitch=(12, 35), roll=(0.5, 25, 75),
               skin=(0.85, (0.0, 0.14), (0.1, 0.4), (0.3, 0.8)),
               palette=((0.0, 0.35), (0.1, 0.85)), occluders=(0.6, 0.5, 3),
               occluder_size=(0.18, 0.5), blur=(0.4, (0.04, 0.09), (0.005, 0.02)), harsh=True),
    # appearance only: the poses of 'a', the camera and colours of 'b' (STC's synthetic target)
    "c": Style(skin=(0.85, (0.0, 0.14), (0.1, 0.4), (0.3, 0.8)),
               palette=((0.0, 0.35), (0.1, 0.85)), occluders=(0.5, 0.6, 2),
               blur=(0.35, (0.04, 0.09), (0.005, 0.02)), harsh=True),
    # 'c' with more and larger occluders and mostly strong blur
    "d": Style(skin=(0.85, (0.0, 0.14), (0.1, 0.4), (0.3, 0.8)),
               palette=((0.0, 0.35), (0.1, 0.85)), occluders=(0.7, 0.4, 3), occluder_size=(0.15, 0.5),
               blur=(0.7, (0.06, 0.12), (0.01, 0.03)), harsh=True),
}


def _style(style):
    if style not in STYLES:
        raise ValueError(f"unknown synthetic style {style!r}; known: {sorted(STYLES)}")
    return STYLES[style]


def _sample_pose(rng, st=STYLES["a"]):
    """(yaw, pitch, roll) in degrees: mostly near frontal, with a large-pose tail."""
    (yp, ysd, ym), (psd, pm), (rp, rsd, rm) = st.yaw, st.pitch, st.roll
    yaw = rng.uniform(-ym, ym) if rng.uniform() < yp else np.clip(rng.normal(0, ysd), -ym, ym)
    pitch = np.clip(rng.normal(0, psd), -pm, pm)
    roll = rng.uniform(-rm, rm) if rng.uniform() < rp else np.clip(rng.normal(0, rsd), -rm, rm)
    return float(yaw), float(pitch), float(roll)


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------

def _p(points):
    return np.round(np.asarray(points) * _ONE).astype(np.int32)


def _fill(img, points, colour):
    cv2.fillPoly(img, [_p(points)], colour, cv2.LINE_AA, SHIFT)


def _line(img, points, colour, thickness, closed=False):
    cv2.polylines(img, [_p(points)], closed, colour, max(1, int(round(thickness))),
                  cv2.LINE_AA, SHIFT)


def _ellipse(centre, axes, angle, n=24, phase=0.0):
    """n points on a rotated ellipse (a convex polygon)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + phase
    c, s = np.cos(angle), np.sin(angle)
    x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
    return np.stack([c * x - s * y, s * x + c * y], 1) + centre


def _rect(centre, half, angle):
    """Corners of a rotated rectangle with half-sides `half`."""
    return _ellipse(centre, np.sqrt(2) * np.asarray(half), angle, n=4, phase=np.pi / 4)


def _inside_convex(points, poly):
    """Which points lie inside a convex polygon (either orientation) -> bool (N,)."""
    edge = np.roll(poly, -1, 0) - poly
    rel = points[:, None, :] - poly[None]
    cross = edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]
    return np.all(cross >= 0, 1) | np.all(cross <= 0, 1)


def _bgr(h, s, v):
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (255.0 * b, 255.0 * g, 255.0 * r)


def _mul(colour, f):
    return tuple(min(255.0, c * f) for c in colour)


def _skin_colour(rng, st=STYLES["a"]):
    # Mostly skin tones, but any hue at times: colour alone must not identify the face.
    tone, hue, sat, val = st.skin
    if rng.uniform() < tone:
        return _bgr(rng.uniform(*hue), rng.uniform(*sat), rng.uniform(*val))
    return _bgr(rng.uniform(), rng.uniform(0.0, 0.6), rng.uniform(0.25, 0.95))


def _any_colour(rng, skin, st=STYLES["a"]):
    if rng.uniform() < 0.2:  # skin-like distractors in the background and on occluders
        return tuple(float(np.clip(c * rng.uniform(0.8, 1.2), 0, 255)) for c in skin)
    sat, val = st.palette
    return _bgr(rng.uniform(), rng.uniform(*sat), rng.uniform(*val))


def _background(rng, h, w, skin, st):
    """Two-colour gradient + low-frequency texture + random shapes."""
    # Built on a k x k grid and upsampled: the gradient is linear (kept exactly by the
    # interpolation) and the texture smooth, so full-resolution float work would be wasted.
    c1 = np.array(_any_colour(rng, skin, st), np.float32)
    c2 = np.array(_any_colour(rng, skin, st), np.float32)
    a = rng.uniform(0, 2 * np.pi)
    k = int(rng.integers(3, 12))
    grid = np.linspace(0.0, 1.0, k, dtype=np.float32)
    t = math.cos(a) * grid[None] + math.sin(a) * grid[:, None]
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    small = c1 + t[..., None] * (c2 - c1) + rng.uniform(-1, 1, (k, k, 3)) * rng.uniform(0, 50)
    img = cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(2, 12))):
        colour = _any_colour(rng, skin, st)
        thick = -1 if rng.uniform() < 0.6 else int(rng.integers(1, 6))
        c = rng.uniform(0, 1, 2) * [w, h]
        r = rng.uniform(0.05, 0.5) * min(h, w)
        kind = rng.integers(4)
        if kind == 0:
            d = rng.uniform(0.3, 1.0, 2) * r
            cv2.rectangle(img, tuple(_p(c - d)), tuple(_p(c + d)), colour, thick,
                          cv2.LINE_AA, SHIFT)
        elif kind == 1:
            poly = _ellipse(c, rng.uniform(0.2, 1.0, 2) * r, rng.uniform(0, np.pi))
            (_fill(img, poly, colour) if thick < 0 else _line(img, poly, colour, thick, True))
        elif kind == 2:
            _line(img, [c, c + rng.uniform(-1, 1, 2) * 2 * r], colour, max(thick, 1) * 2)
        else:
            _fill(img, c + rng.uniform(-1, 1, (int(rng.integers(3, 7)), 2)) * r, colour)
    if st.harsh:  # a fine grating (fabric, blinds) all over the background
        period, angle, amplitude = rng.uniform(3, 12), rng.uniform(0, np.pi), rng.uniform(15, 45)
        t = (math.cos(angle) * np.arange(w, dtype=np.float32)[None]
             + math.sin(angle) * np.arange(h, dtype=np.float32)[:, None])
        wave = np.float32(amplitude) * np.sin(t * np.float32(2 * np.pi / period))
        img = np.clip(img + wave[..., None], 0, 255).astype(np.uint8)
    return img


def _roi(img, points, margin):
    """Pixel box (x0, y0, x1, y1) around `points`, `margin` px wider, clipped to the image."""
    h, w = img.shape[:2]
    x0, y0 = np.maximum(np.floor(points.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(points.max(0)).astype(int) + margin + 1, [w, h])
    return x0, y0, x1, y1


def _shade(img, outline, strength, width):
    """Darkens the face towards its boundary (a smooth rim `width` pixels wide), so the jaw
    line shows even when the background has the skin's colour."""
    x0, y0, x1, y1 = _roi(img, outline, 2)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return
    roi = img[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_p(outline - [x0, y0])], 255, cv2.LINE_AA, SHIFT)
    inner = np.minimum(cv2.distanceTransform(mask, cv2.DIST_L2, 3) / np.float32(width), 1)
    dark = np.float32(strength) * (mask > 0) * (1 - inner) ** 2
    roi[:] = (roi * (1 - dark)[..., None]).astype(np.uint8)


def _draw_eye(img, lid, pupil, sclera, iris):
    """Sclera and iris clipped to the eye opening (drawn in a small ROI, then masked)."""
    x0, y0, x1, y1 = _roi(img, lid, 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    roi = img[y0:y1, x0:x1]
    off = np.array([x0, y0])
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_p(lid - off)], 255, cv2.LINE_AA, SHIFT)
    eye = np.empty_like(roi)
    eye[:] = sclera
    r = 0.21 * np.linalg.norm(lid[0] - lid[4])  # iris diameter ~ 0.42 eye width
    c = tuple(_p(pupil - off))
    cv2.circle(eye, c, int(r * _ONE), iris, -1, cv2.LINE_AA, SHIFT)
    cv2.circle(eye, c, int(0.45 * r * _ONE), (20, 20, 20), -1, cv2.LINE_AA, SHIFT)
    cv2.circle(eye, tuple(_p(pupil - off - 0.3 * r)), int(0.18 * r * _ONE), (250, 250, 250),
               -1, cv2.LINE_AA, SHIFT)
    a = mask[..., None].astype(np.float32) / 255.0
    roi[:] = (roi * (1 - a) + eye * a).astype(np.uint8)


def _occluders(rng, img, lm, scale, skin, st):
    """Draws random occluders over the face (0-2 in style a) -> mask of the landmarks hidden."""
    covered = np.zeros(len(lm), bool)
    p_any, p_one, more = st.occluders
    n = 0 if rng.uniform() > p_any else (1 if rng.uniform() < p_one else more)
    for _ in range(n):
        kind = rng.choice(5, p=[0.25, 0.25, 0.25, 0.1, 0.15])
        anchor = lm[rng.integers(len(lm))] + rng.normal(0, 0.05 * scale, 2)
        size = rng.uniform(*st.occluder_size) * scale
        angle = rng.uniform(0, np.pi)
        colour = _any_colour(rng, skin, st)
        if kind == 0:  # box
            polys = [_rect(anchor, rng.uniform(0.4, 1.0, 2) * size, angle)]
        elif kind == 1:  # round object
            polys = [_ellipse(anchor, (size, size * rng.uniform(0.4, 1.0)), angle)]
        elif kind == 2:  # hand: palm + four fingers, usually skin-coloured
            if rng.uniform() < 0.8:
                colour = _mul(_skin_colour(rng, st), rng.uniform(0.8, 1.1))
            d = np.array([np.cos(angle), np.sin(angle)])  # finger direction
            side = np.array([-d[1], d[0]])
            polys = [_ellipse(anchor, (0.5 * size, 0.42 * size), angle)]
            for i in range(4):
                base = anchor + 0.35 * size * d + (i - 1.5) * 0.22 * size * side
                length = size * rng.uniform(0.5, 0.9)
                polys.append(_ellipse(base + 0.5 * length * d, (0.5 * length, 0.1 * size),
                                      angle, n=10))
        elif kind == 3:  # sunglasses
            colour = _mul(colour, 0.3)
            eye_w = np.linalg.norm(lm[60] - lm[64]) + np.linalg.norm(lm[68] - lm[72])
            a = math.atan2(*(lm[72] - lm[60])[::-1])
            polys = [_ellipse(lm[i:i + 8].mean(0), (0.5 * eye_w, 0.35 * eye_w), a)
                     for i in (60, 68)]
            _line(img, [polys[0][0], polys[1][12]], colour, 0.015 * scale)
        else:  # bar: microphone, strand, stick across the face
            polys = [_rect(anchor, (size * rng.uniform(1.2, 2.5),
                                    0.02 * scale * rng.uniform(1, 3)), angle)]
        for poly in polys:
            _fill(img, poly, colour)
            covered |= _inside_convex(lm, poly)
    return covered


def _render(rng, size, p, lm, to_px, scale, yaw, st):
    """Draws the face whose landmarks are lm (pixels) -> (BGR image, attribute flags)."""
    h, w = size
    skin = _skin_colour(rng, st)
    img = _background(rng, h, w, skin, st)
    u = rng.uniform

    # Behind the face: shoulders, neck, hair. These hang on the head's axis, so they do not
    # turn with yaw (turn=False), and neither does the cranium's outline.
    if u() < 0.85:
        clothes = [[-0.3, 0.75], [0.3, 0.75], [1.1, 1.0], [1.3, 2.2], [-1.3, 2.2], [-1.1, 1.0]]
        _fill(img, to_px(np.array(clothes), turn=False), _any_colour(rng, skin, st))
    nw = u(0.18, 0.26)
    neck = np.array([[-nw, 0.2], [nw, 0.2], [1.15 * nw, 1.3], [-1.15 * nw, 1.3]])
    _fill(img, to_px(neck, turn=False), _mul(skin, 0.75))
    hair = (_bgr(u(0.02, 0.12), u(0.2, 0.8), u(0.05, 0.8)) if u() < 0.85
            else _any_colour(rng, skin, st))
    radius, jt, fh = _radius(p), p["jaw_top"], u(0.36, 0.5)
    th = np.linspace(0, np.pi, 25)
    if u() < 0.8:
        ax, ay, bottom = radius * u(1.0, 1.12), fh * u(1.05, 1.25), u(-0.05, 0.8)
        top = np.stack([ax * np.cos(th), jt - 0.02 - ay * np.sin(th)], 1)
        _fill(img, to_px(np.r_[[[ax, bottom]], top, [[-ax, bottom]]], turn=False), hair)

    # Ears on the cylinder's sides: behind the face unless turned towards the camera.
    ears = []
    for side in (-1.0, 1.0):
        facing = math.cos(side * np.pi / 2 + yaw)
        c = to_px(np.array([[side * radius, 0.07]]), 0.01, False)[0]
        axes = np.array([0.03 + 0.03 * abs(facing), 0.065]) * scale
        poly = _ellipse(c, axes, math.atan2(*(lm[32] - lm[0])[::-1]), n=16)
        ears.append((facing > 0.2, poly))
    ear = _mul(skin, 0.85)
    for visible, poly in ears:
        if not visible:
            _fill(img, poly, ear)

    # Head: the hull of the jaw line, the cranium and the nose and lips, which stick out of
    # the cheek line in profile; a darker rim towards its boundary.
    cranium = to_px(np.stack([radius * np.cos(th), jt - fh * np.sin(th)], 1), turn=False)
    head = np.r_[lm[0:33], lm[51:60], lm[76:88], cranium].astype(np.float32)
    head = cv2.convexHull(head).reshape(-1, 2).astype(np.float64)
    _fill(img, head, skin)
    _shade(img, head, u(0.15, 0.45), 0.12 * scale)
    # A faint jaw-line shadow: the contour stays visible where yaw puts it inside the head.
    _line(img, lm[0:33], _mul(skin, u(0.75, 0.9)), 0.012 * scale)
    for visible, poly in ears:
        if visible:
            _fill(img, poly, ear)
            _fill(img, 0.6 * poly + 0.4 * poly.mean(0), _mul(skin, 0.65))

    brow = _mul(hair, u(0.3, 0.9))
    _fill(img, lm[33:42], brow)
    _fill(img, lm[42:51], brow)

    # Make-up: lipstick and/or eye shadow (up to 55% of the way to the brow) with eyeliner.
    makeup = u() < 0.15
    shadow = makeup and u() < 0.7
    lipstick = makeup and (not shadow or u() < 0.7)
    if shadow:
        colour = _bgr(u(), u(0.5, 1.0), u(0.3, 0.9))
        for lid, brow_pts in ((lm[60:65], lm[[33, 41, 40, 39, 38]]),
                              (lm[68:73], lm[[50, 49, 48, 47, 46]])):
            _fill(img, np.r_[lid, (lid + 0.55 * (brow_pts - lid))[::-1]], colour)

    # Eyes: sclera + iris in the lid polygon, lash line on the upper lid.
    sclera = _bgr(u(0.05, 0.2), u(0.0, 0.15), u(0.7, 1.0))
    iris = _bgr(u(0.05, 0.6), u(0.3, 0.9), u(0.15, 0.6))
    lash = _mul(hair, 0.3) if u() < 0.5 else (20.0, 20.0, 25.0)
    for lid, lower, pupil in ((lm[60:68], lm[[64, 65, 66, 67, 60]], lm[96]),
                              (lm[68:76], lm[[72, 73, 74, 75, 68]], lm[97])):
        _draw_eye(img, lid, pupil, sclera, iris)
        _line(img, lid[:5], (15.0, 15.0, 15.0) if shadow else lash,
              (0.025 if shadow else 0.009) * scale)
        _line(img, lower, _mul(skin, 0.6), 0.005 * scale)

    # Nose: a shaded bridge, the nose bottom line and nostrils.
    side = np.array([u(-1, 1) * 0.03 * scale, 0.0])
    _line(img, lm[51:55] + side, _mul(skin, 0.82), 0.02 * scale)
    _line(img, lm[55:60], _mul(skin, 0.6), 0.012 * scale)
    for i in (56, 58):
        poly = _ellipse(lm[i] - [0, 0.012 * scale], (0.018 * scale, 0.008 * scale),
                        math.atan2(*(lm[59] - lm[55])[::-1]), n=12)
        _fill(img, poly, _mul(skin, 0.45))

    # Lips; an open mouth shows a dark inside and teeth.
    lip = (_bgr(u(0.9, 1.05), u(0.6, 1.0), u(0.3, 0.9)) if lipstick
           else tuple(c * f for c, f in zip(skin, (u(0.6, 0.85), u(0.55, 0.8), u(0.85, 1.0)))))
    _fill(img, lm[76:88], lip)
    gap = np.linalg.norm(lm[94] - lm[90])
    if gap > 1.0:
        _fill(img, lm[88:96], _bgr(0.0, u(0.3, 0.8), u(0.05, 0.3)))
        if gap > 0.03 * scale:
            t = 0.35 * (lm[[93, 94, 95]] - lm[[91, 90, 89]]) + lm[[91, 90, 89]]
            _fill(img, np.r_[lm[88:93], t], _bgr(0.12, u(0.0, 0.2), u(0.75, 1.0)))
    else:
        _line(img, lm[88:93], _mul(lip, 0.5), 0.008 * scale)

    if u() < 0.08:  # glasses: thin frames, not an occlusion
        frame = _bgr(u(), u(), u(0.0, 0.6))
        eye_w = np.linalg.norm(lm[60] - lm[64]) + np.linalg.norm(lm[68] - lm[72])
        a = math.atan2(*(lm[72] - lm[60])[::-1])
        lens = [_ellipse(lm[i:i + 8].mean(0), (0.5 * eye_w, 0.36 * eye_w), a) for i in (60, 68)]
        for poly in lens:
            _line(img, poly, frame, 0.01 * scale, closed=True)
        _line(img, [lens[0][0], lens[1][12]], frame, 0.01 * scale)

    covered = _occluders(rng, img, lm, scale, skin, st)

    # Camera: blur, scene lighting (a linear gradient across the face), colour cast, noise.
    illumination = False
    ambient, k = u(0.75, 1.2), u(0.0, 0.35)
    r = u()
    if r < 0.2:
        k, illumination = u(0.6, 1.1), True
    elif r < 0.27:
        ambient, illumination = (u(0.3, 0.5) if u() < 0.5 else u(1.45, 1.8)), True
    if st.harsh:  # strong light from one side
        k, ambient, illumination = u(0.5, 0.9), u(0.75, 1.05), True
    p_blur, strong, weak = st.blur
    blur = u() < p_blur
    sigma = (u(*strong) if blur else u(*weak)) * 0.5 * scale  # x inter-ocular distance
    if blur and u() < 0.25:  # motion blur: a line kernel
        n = max(3, int(round(3 * sigma)) | 1)
        kernel = np.zeros((n, n), np.float32)
        b = u(0, np.pi)
        d = 0.5 * n * np.array([math.cos(b), math.sin(b)])
        _line(kernel, [n // 2 - d, n // 2 + d], 1.0, 1)
        img = cv2.filter2D(img, -1, kernel / kernel.sum())
    elif sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    cx, cy = to_px(_PIVOT[None])[0]
    a = u(-0.4, 0.4) + np.pi * (u() < 0.5) if st.harsh else u(0, 2 * np.pi)  # light direction
    field = (math.cos(a) * (np.arange(w, dtype=np.float32)[None] - np.float32(cx))
             + math.sin(a) * (np.arange(h, dtype=np.float32)[:, None] - np.float32(cy)))
    field = np.clip(1 + field * np.float32(k / (0.5 * scale)), 0.05, 2.5) * np.float32(ambient)
    f = img * field[..., None] * np.asarray(u(0.9, 1.1, 3), np.float32)  # colour cast
    if st.harsh:  # low contrast (haze, a flat sensor curve) and more noise below
        mean = f.mean((0, 1))
        f = mean + np.float32(u(0.5, 0.75)) * (f - mean)
        f += _GAUSS[rng.integers(0, 256, f.shape, dtype=np.uint8)] * np.float32(u(2.0, 6.0))
    # Sensor noise: Gaussian via a 256-entry inverse-CDF table (4x faster than normal()).
    noise = _GAUSS[rng.integers(0, 256, f.shape, dtype=np.uint8)]
    f += noise * np.float32(u(0.0, 6.0))
    if u() < 0.08:
        f[:] = (f @ np.array([0.114, 0.587, 0.299], np.float32))[..., None]
    img = np.clip(f, 0, 255).astype(np.uint8)
    return img, dict(illumination=illumination, makeup=makeup, blur=blur,
                     occlusion=int(covered.sum()) >= OCCLUDED_POINTS_FOR_FLAG)


def generate_face(rng, size=(256, 256), style="a"):
    """One random face.

    rng: a numpy Generator; size: (H, W); style: a key of STYLES.
    Returns (image uint8 BGR (H, W, 3), landmarks (98, 2) float64 image pixels,
    rect (xmin, ymin, xmax, ymax) detector-style face box in pixels, attributes dict
    {name: 0/1} for ATTRIBUTES).
    """
    h, w = size
    st = _style(style)
    p = _sample_shape_params(rng)
    yaw, pitch, roll = _sample_pose(rng, st)
    angles, radius = np.radians([yaw, pitch, roll]), _radius(p)
    # scale = pixels per canonical unit = side of PIPNet's crop; faces not always centred.
    scale = min(h, w) * math.exp(rng.uniform(math.log(0.4), math.log(1.0)))
    margin = 0.35 * scale
    centre = np.array([rng.uniform(margin, w - margin) if w > 2 * margin else w / 2,
                       rng.uniform(margin, h - margin) if h > 2 * margin else h / 2])

    shape = _shape(p) + rng.normal(0.0, 0.004, (NUM_LANDMARKS, 2))  # annotation noise
    posed = _pose(shape, _DEPTH, _JAW, *angles, radius)
    # Yaw swings the face about the head's axis; undo the drift of the landmarks' box centre
    # so that `centre` places the face whatever its pose.
    box_centre = lambda pts: 0.5 * (pts.min(0) + pts.max(0))
    drift = box_centre(posed) - box_centre(shape)

    def to_px(points, depth=0.0, contour=True, turn=True):
        """Canonical points -> pixels with this face's pose (turn=False: without the yaw)."""
        depth = np.broadcast_to(depth, len(points))
        a = angles if turn else (0.0, *angles[1:])
        return centre + scale * (_pose(points, depth, contour, *a, radius) - drift - _PIVOT)

    lm = centre + scale * (posed - drift - _PIVOT)
    img, flags = _render(rng, (h, w), p, lm, to_px, scale, angles[0], st)

    # Detector-style box (see RECT_MARGINS) with a detector's jitter.
    (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
    bw, bh = x1 - x0, y1 - y0
    rect = (np.array([x0 - RECT_MARGINS[0] * bw, y0 - RECT_MARGINS[1] * bh,
                      x1 + RECT_MARGINS[2] * bw, y1 + RECT_MARGINS[3] * bh])
            + rng.normal(0.0, 0.025, 4) * [bw, bh, bw, bh])
    attributes = {
        "pose": int(abs(yaw) > 40 or abs(roll) > 25 or abs(pitch) > 20),
        "expression": int(p["mouth_open"] > 0.08 or p["smile"] > 0.035),
        "illumination": int(flags["illumination"]),
        "make-up": int(flags["makeup"]),
        "occlusion": int(flags["occlusion"]),
        "blur": int(flags["blur"]),
    }
    return img, lm, tuple(float(v) for v in rect), attributes


# --------------------------------------------------------------------------------------------
# Data set files
# --------------------------------------------------------------------------------------------

def _face_rng(seed, split, index):
    # One stream per image, independent of worker count and of the other images.
    return np.random.default_rng([int(seed), SPLITS.index(split), int(index)])


def annotation_line(landmarks, rect, attributes, image_path):
    """One WFLW annotation line: 196 coords, 4 rect values, 6 flags, image path."""
    numbers = [f"{v:.6f}" for v in np.asarray(landmarks, np.float64).reshape(-1)]
    numbers += [f"{v:.6f}" for v in rect]
    flags = [str(int(attributes[name])) for name in ATTRIBUTES]
    return " ".join(numbers + flags + [image_path])


def _atomic_write(path, data: bytes):
    # Temp name in the same folder, then rename: readers never see a partial file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_face(job):
    """Worker: renders and writes one image -> (split, annotation line)."""
    root, split, index, seed, size, style = job
    img, lm, rect, attributes = generate_face(_face_rng(seed, split, index), size, style)
    rel = f"{IMAGE_SUBDIR}/{split}_{index:05d}.jpg"
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {rel}")
    _atomic_write(pathlib.Path(root) / "WFLW_images" / rel, buf.tobytes())
    return split, annotation_line(lm, rect, attributes, rel)


def _init_worker():
    cv2.setNumThreads(1)  # one process per core already; cv2's own threads would oversubscribe


def annotation_file(root, split):
    return pathlib.Path(root) / ANNOTATION_DIR / f"list_98pt_rect_attr_{split}.txt"


def write_wflw_dataset(root, num_train, num_test, seed=0, image_size=(256, 256), workers=None,
                       style="a"):
    """Writes a synthetic data set in WFLW's raw layout under root -> root (a Path).

    Deterministic for (seed, counts, image_size, style): each image has its own random stream
    derived from (seed, split, index), so the bytes do not depend on `workers` (processes;
    default os.cpu_count()). Skips the work when root already holds a complete data set with
    the same parameters (synthetic_info.json). Every file is written to a temp name and
    renamed; the annotation files and then synthetic_info.json come last, so an interrupted
    run never leaves a complete-looking data set.
    """
    root = pathlib.Path(root)
    h, w = (int(v) for v in image_size)
    if min(num_train, num_test) < 0 or seed < 0 or min(h, w) < 16:
        raise ValueError(f"need num_train, num_test >= 0, seed >= 0 and an image size of at "
                         f"least 16x16; got {num_train}, {num_test}, {seed}, {image_size}")
    _style(style)
    info = dict(version=VERSION, seed=int(seed), num_train=int(num_train),
                num_test=int(num_test), image_size=[h, w])
    if style != "a":  # absent means 'a': data sets written before styles existed stay valid
        info["style"] = style
    info_path = root / INFO_FILE
    files = {split: annotation_file(root, split) for split in SPLITS}
    try:
        done = json.loads(info_path.read_text()) == info
    except (OSError, ValueError):
        done = False
    if done and all(f.is_file() for f in files.values()):
        return root

    # Invalidate first: if this run dies, nothing may claim the half-rewritten images.
    for path in (info_path, *files.values()):
        path.unlink(missing_ok=True)
    (root / "WFLW_images" / IMAGE_SUBDIR).mkdir(parents=True, exist_ok=True)
    (root / ANNOTATION_DIR).mkdir(parents=True, exist_ok=True)
    jobs = [(str(root), split, i, int(seed), (h, w), style)
            for split, n in zip(SPLITS, (num_train, num_test)) for i in range(1, n + 1)]
    lines = {split: [] for split in SPLITS}
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    with tqdm(total=len(jobs), desc=f"synthetic WFLW -> {root}", unit="face") as bar:
        if workers == 1 or len(jobs) < 2 * workers:
            results, pool = map(_write_face, jobs), None
        else:
            # spawn: safe even if the caller has threads (JAX, TF) running.
            pool = multiprocessing.get_context("spawn").Pool(workers, _init_worker)
            chunk = max(1, min(64, len(jobs) // (8 * workers)))  # few round trips, even load
            results = pool.imap(_write_face, jobs, chunksize=chunk)
        try:
            for split, line in results:  # imap keeps job order: lines follow the indices
                lines[split].append(line)
                bar.update()
        finally:
            if pool is not None:
                pool.terminate()
    for split in SPLITS:
        _atomic_write(files[split], "".join(line + "\n" for line in lines[split]).encode())
    _atomic_write(info_path, (json.dumps(info, indent=1) + "\n").encode())
    return root


# Landmark groups for drawing: jaw, brows, nose, eyes, lips, pupils.
_GROUPS = ((0, 33, (255, 255, 0)), (33, 51, (0, 165, 255)), (51, 60, (255, 0, 255)),
           (60, 76, (0, 255, 0)), (76, 96, (0, 0, 255)), (96, 98, (255, 255, 255)))


def draw_landmarks(img, landmarks, rect=None, attributes=None):
    """A copy of img with the landmarks (colour per part), the rect and the set flags."""
    out = img.copy()
    r = max(1.0, min(img.shape[:2]) / 200)
    for start, stop, colour in _GROUPS:
        for x, y in landmarks[start:stop]:
            cv2.circle(out, tuple(_p([x, y])), int(r * _ONE), colour, -1, cv2.LINE_AA, SHIFT)
    if rect is not None:
        cv2.rectangle(out, tuple(_p(rect[:2])), tuple(_p(rect[2:])), (0, 255, 0), 1,
                      cv2.LINE_AA, SHIFT)
    if attributes:
        text = " ".join(name[:4] for name in ATTRIBUTES if attributes[name])
        cv2.putText(out, text, (3, img.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return out


def render_preview(path, n=16, seed=0, image_size=(256, 256), style="a"):
    """Saves a grid of n generated faces with landmarks, rects and flags drawn -> path."""
    h, w = image_size
    cols = math.ceil(math.sqrt(n))
    grid = np.zeros((math.ceil(n / cols) * h, cols * w, 3), np.uint8)
    for i in range(n):
        img, lm, rect, attributes = generate_face(_face_rng(seed, "test", 100000 + i), (h, w),
                                                  style)
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = draw_landmarks(img, lm, rect, attributes)
    if not cv2.imwrite(str(path), grid):
        raise OSError(f"could not write the preview image {path}")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="data set root (WFLW layout)")
    parser.add_argument("--num_train", type=int, default=7500)
    parser.add_argument("--num_test", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image_size", type=int, nargs=2, default=(256, 256),
                        metavar=("H", "W"))
    parser.add_argument("--workers", type=int, default=None, help="default: all cores")
    parser.add_argument("--style", default="a", choices=sorted(STYLES))
    parser.add_argument("--preview", default=None, help="also save a preview grid PNG here")
    args = parser.parse_args(argv)
    root = write_wflw_dataset(args.out, args.num_train, args.num_test, args.seed,
                              tuple(args.image_size), args.workers, args.style)
    print(f"WFLW-format synthetic data set: {root}")
    if args.preview:
        render_preview(args.preview, seed=args.seed, image_size=tuple(args.image_size),
                       style=args.style)
        print(f"preview: {args.preview}")


if __name__ == "__main__":
    main()
