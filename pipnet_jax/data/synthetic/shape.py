"""The face model of the synthetic data set: a parametric 98-point WFLW shape (identity,
expression) posed on a cylinder head, and the styles' random distributions.

Canonical units are those of PIPNet's WFLW crop frame (spec 11.2; the neutral shape is close to
the released WFLW meanface) shifted so that the origin is the centre of the eye line: jaw at
x = +-0.42, brows at y ~ -0.09, chin at y ~ 0.5, crop centre at (0, 0.1).
"""
import dataclasses

import numpy as np

from pipnet_jax.landmarks import get_landmark_set

NUM_LANDMARKS = 98
# WFLW flip permutation (spec 10.1): new[i] = old[WFLW_FLIP[i]] after a horizontal flip.
WFLW_FLIP = np.array(get_landmark_set("wflw").flip_permutation)

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
DEPTH = np.zeros(NUM_LANDMARKS)
DEPTH[33:51] = 0.02
DEPTH[51:55] = [0.03, 0.06, 0.09, 0.13]
DEPTH[55:60] = [0.04, 0.07, 0.09, 0.07, 0.04]
DEPTH[60:76] = -0.01
DEPTH[76:96] = 0.03
DEPTH[[76, 82]] = 0.0
JAW = np.zeros(NUM_LANDMARKS, bool)
JAW[0:33] = True
_JAW_STEPS = np.r_[0.0, np.cumsum(1 + 0.27 * np.arange(16) / 15)]
_JAW_STEPS /= _JAW_STEPS[-1]
PIVOT = np.array([0.0, 0.1])  # centre of the PIPNet crop: rotation and placement pivot


def shape_points(p):
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


def pose_points(points, depth, contour, yaw, pitch, roll, radius):
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
    y = (y - PIVOT[1]) * np.cos(pitch) - z * np.sin(pitch)
    c, s = np.cos(roll), np.sin(roll)
    return np.stack([c * x - s * y, s * x + c * y], 1) + PIVOT


def head_radius(p):
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
    return pose_points(shape_points(p), DEPTH, JAW, *np.radians([yaw, pitch, roll]), head_radius(p))


def canonical_shape():
    """The neutral frontal face (98, 2) in canonical units; exactly symmetric under WFLW_FLIP."""
    return face_shape()


def sample_shape_params(rng):
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


def get_style(style):
    if style not in STYLES:
        raise ValueError(f"unknown synthetic style {style!r}; known: {sorted(STYLES)}")
    return STYLES[style]


def sample_pose(rng, st=STYLES["a"]):
    """(yaw, pitch, roll) in degrees: mostly near frontal, with a large-pose tail."""
    (yp, ysd, ym), (psd, pm), (rp, rsd, rm) = st.yaw, st.pitch, st.roll
    yaw = rng.uniform(-ym, ym) if rng.uniform() < yp else np.clip(rng.normal(0, ysd), -ym, ym)
    pitch = np.clip(rng.normal(0, psd), -pm, pm)
    roll = rng.uniform(-rm, rm) if rng.uniform() < rp else np.clip(rng.normal(0, rsd), -rm, rm)
    return float(yaw), float(pitch), float(roll)
