"""Drawing a synthetic face: a few anti-aliased cv2 fills over a cluttered background, then
degraded (lighting, occluders, blur, noise). `generate_face` samples a face (shape.py) and
draws it; `draw_landmarks` marks the labels on an image (previews).
"""
import colorsys
import math
from statistics import NormalDist

import cv2
import numpy as np

from pipnet_jax.data.synthetic.shape import (DEPTH, JAW, NUM_LANDMARKS, PIVOT, STYLES, get_style,
                                             head_radius, pose_points, sample_pose,
                                             sample_shape_params, shape_points)

# The WFLW attribute flags in annotation-file order (as WFLW spells them).
ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")
# Rect = landmark box grown by these fractions of its width/height (left, top, right, bottom),
# tuned so that the mean face of the crops PIPNet takes from it (spec 11.2) matches WFLW's.
RECT_MARGINS = (-0.01, 0.27, -0.01, -0.01)
OCCLUDED_POINTS_FOR_FLAG = 3  # an occluder that hides fewer landmarks does not count

_GAUSS = np.array([NormalDist().inv_cdf((i + 0.5) / 256) for i in range(256)], np.float32)
SHIFT = 4  # cv2 fractional bits: sub-pixel accurate, anti-aliased drawing
_ONE = 1 << SHIFT


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
    radius, jt, fh = head_radius(p), p["jaw_top"], u(0.36, 0.5)
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
    cx, cy = to_px(PIVOT[None])[0]
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
    st = get_style(style)
    p = sample_shape_params(rng)
    yaw, pitch, roll = sample_pose(rng, st)
    angles, radius = np.radians([yaw, pitch, roll]), head_radius(p)
    # scale = pixels per canonical unit = side of PIPNet's crop; faces not always centred.
    scale = min(h, w) * math.exp(rng.uniform(math.log(0.4), math.log(1.0)))
    margin = 0.35 * scale
    centre = np.array([rng.uniform(margin, w - margin) if w > 2 * margin else w / 2,
                       rng.uniform(margin, h - margin) if h > 2 * margin else h / 2])

    shape = shape_points(p) + rng.normal(0.0, 0.004, (NUM_LANDMARKS, 2))  # annotation noise
    posed = pose_points(shape, DEPTH, JAW, *angles, radius)
    # Yaw swings the face about the head's axis; undo the drift of the landmarks' box centre
    # so that `centre` places the face whatever its pose.
    box_centre = lambda pts: 0.5 * (pts.min(0) + pts.max(0))
    drift = box_centre(posed) - box_centre(shape)

    def to_px(points, depth=0.0, contour=True, turn=True):
        """Canonical points -> pixels with this face's pose (turn=False: without the yaw)."""
        depth = np.broadcast_to(depth, len(points))
        a = angles if turn else (0.0, *angles[1:])
        turned = pose_points(points, depth, contour, *a, radius)
        return centre + scale * (turned - drift - PIVOT)

    lm = centre + scale * (posed - drift - PIVOT)
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
