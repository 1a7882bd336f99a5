"""PIPNet's training-time augmentation (spec 10) as TensorFlow graph ops for tf.data `map`.

One sample at a time: image uint8 (H, W, 3) RGB, landmarks float32 (N, 2) in normalised crop
coordinates (x, y). `augment` is a pure function of its seed (shape [2]): it splits the seed into
one stateless seed per op, so a pipeline that derives the seed from (seed, epoch, host, index),
e.g. with `tf.random.experimental.stateless_fold_in`, reproduces every sample exactly whatever
the host count, worker count or op order.

Coordinate convention (the original's, and PIL's): x_norm * W is a continuous pixel coordinate
with 0 at the left edge of pixel 0, so pixel i spans [i, i + 1) and its centre is
x_norm = (i + 0.5) / W. Under it a left-right flip is exactly x -> 1 - x (spec 18.8).

The ops with explicit parameters are public too (previews, tests):
  translate_sample, occlude_sample, flip_sample, rotate_sample, blur_sample, grayscale_sample
"""
import math

import tensorflow as tf

OPS = ('translate', 'occlusion', 'flip', 'rotate', 'blur', 'gray')
# Seeds are assigned by an op's index here, not by its position in `order`, so reordering or
# disabling one op leaves the draws of the others unchanged.
_NUM_DRAWS = {'translate': 3, 'occlusion': 8, 'flip': 1, 'rotate': 2, 'blur': 2, 'gray': 1}
# PIL's GaussianBlur is exactly an identity for radius <= 0.07669634 (float32) and no further.
# Up to there the box radius is < 0.001 (integer part 0) and the outer weight fw <= 16447, so
# one pass, (ww v + fw (a + b) + 2^23) >> 24 with ww + 2 fw = 2^24 - (0 or 1), returns v for
# every pixel v and neighbours a, b (worst cases v = 0, a = b = 255 and v = 255, a = b = 0);
# at radius 0.07669635 (fw = 16448, ww odd) a 255 between two 0s becomes 254. Skipping below
# this round bound saves the work only: blur_sample itself is exact down to sigma = 0.
_MIN_BLUR_SIGMA = 0.0766
# Philox everywhere: 'auto_select' may pick another generator on another device.
_ALG = 'philox'


def default_augment_config():
    """The original's parameters (spec 10); `*_prob` is the probability that an op is applied."""
    return {
        'translate_prob': 0.5, 'translate_max_px': 30,
        'occlusion_prob': 0.5, 'occlusion_max_frac': 0.4,
        'flip_prob': 0.5,
        'rotate_prob': 0.5, 'rotate_max_deg': 30.0,
        'blur_prob': 0.3, 'blur_max_radius': 5.0,
        'gray_prob': 0.2,
        'order': list(OPS),
    }


def _resolve(config):
    """Defaults overridden by a dict or an ml_collections-like object; unknown names raise so a
    typo cannot silently leave the default in place."""
    cfg = default_augment_config()
    if config is None:
        return cfg
    if hasattr(config, 'keys'):
        unknown = set(config.keys()) - set(cfg)
        if unknown:
            raise ValueError(f'unknown augmentation config fields: {sorted(unknown)}')
    get = getattr(config, 'get', None) or (lambda k, d: getattr(config, k, d))
    cfg = {k: get(k, v) for k, v in cfg.items()}
    cfg['order'] = list(cfg['order'])
    bad = [name for name in cfg['order'] if name not in OPS]
    if bad or len(set(cfg['order'])) != len(cfg['order']):
        raise ValueError(f'order must list distinct ops from {OPS}, got {cfg["order"]}')
    return cfg


def _tensors(image, landmarks):
    return tf.convert_to_tensor(image, tf.uint8), tf.convert_to_tensor(landmarks, tf.float32)


def _hw(image):
    shape = tf.shape(image)
    return shape[0], shape[1]


def translate_sample(image, landmarks, c, f):
    """PIL AFFINE (1,0,c, 0,1,f): out[y, x] = in[y + f, x + c], black outside, so the content
    moves by (-c, -f) px. Landmarks follow, then are clipped to [0, 1] as in the original."""
    image, landmarks = _tensors(image, landmarks)
    c, f = tf.cast(c, tf.int32), tf.cast(f, tf.int32)
    h, w = _hw(image)
    shifted = tf.roll(image, shift=tf.stack([-f, -c]), axis=[0, 1])
    # roll wraps around: blank the rows/columns whose source lies outside the input.
    ys, xs = tf.range(h) + f, tf.range(w) + c
    valid = ((ys >= 0) & (ys < h))[:, None] & ((xs >= 0) & (xs < w))[None, :]
    image = tf.where(valid[..., None], shifted, tf.zeros_like(shifted))
    shift = tf.cast(tf.stack([c, f]), tf.float32) / tf.cast(tf.stack([w, h]), tf.float32)
    return image, tf.clip_by_value(landmarks - shift, 0.0, 1.0)


def occlude_sample(image, landmarks, x0, y0, w, h, colour):
    """Fill rows [y0, y0+h) x columns [x0, x0+w) with `colour` (3 ints); landmarks unchanged."""
    image, landmarks = _tensors(image, landmarks)
    ih, iw = _hw(image)
    rows, cols = tf.range(ih), tf.range(iw)
    inside = (((rows >= y0) & (rows < y0 + h))[:, None]
              & ((cols >= x0) & (cols < x0 + w))[None, :])
    colour = tf.cast(colour, tf.uint8)[None, None, :]
    return tf.where(inside[..., None], colour, image), landmarks


def flip_sample(image, landmarks, flip_permutation):
    """Left-right flip; landmarks re-indexed new[i] = old[P[i]], then x -> 1 - x."""
    image, landmarks = _tensors(image, landmarks)
    landmarks = tf.gather(landmarks, flip_permutation)
    landmarks = tf.stack([1.0 - landmarks[:, 0], landmarks[:, 1]], axis=1)
    return tf.reverse(image, axis=[1]), landmarks


def rotate_sample(image, landmarks, angle_deg):
    """PIL `Image.rotate(angle_deg)`: counter-clockwise on screen about the image centre,
    NEAREST, same size, black corners. Landmarks rotate about (0.5, 0.5) in normalised
    coordinates (spec 10.4, not clipped), which matches the pixels for square images (the
    original's crops are; for W != H the original's landmark formula is anisotropic)."""
    image, landmarks = _tensors(image, landmarks)
    theta = tf.cast(angle_deg, tf.float32) * (math.pi / 180.0)
    cos, sin = tf.cos(theta), tf.sin(theta)
    h, w = _hw(image)
    # PIL maps an output point u (pixel-corner coordinates, centre c = (W/2, H/2)) to the input
    # point R(u - c) + c with R = [[cos, -sin], [sin, cos]], sampling at the pixel centre
    # u = index + 0.5 and flooring. The transform op works in index coordinates (centre of
    # pixel i at i) and rounds, so with u = index + 0.5 the same map is about the index centre
    # o = ((W-1)/2, (H-1)/2) and round(x_in) == floor(x_in + 0.5) picks PIL's pixel.
    ox = (tf.cast(w, tf.float32) - 1.0) / 2.0
    oy = (tf.cast(h, tf.float32) - 1.0) / 2.0
    transform = tf.stack([cos, -sin, ox - cos * ox + sin * oy,
                          sin, cos, oy - sin * ox - cos * oy, 0.0, 0.0])[None]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.stack([h, w]),
        fill_value=0.0, interpolation='NEAREST', fill_mode='CONSTANT')[0]
    out.set_shape(image.shape)
    # Forward map (the inverse of R): x' = 0.5 + dx cos + dy sin, y' = 0.5 - dx sin + dy cos.
    d = landmarks - 0.5
    landmarks = tf.stack([0.5 + d[:, 0] * cos + d[:, 1] * sin,
                          0.5 - d[:, 0] * sin + d[:, 1] * cos], axis=1)
    return out, landmarks


def _pil_box_radius(sigma):
    """libImaging/BoxBlur.c `_gaussian_blur_radius(sigma, passes=3)`: the fractional radius of
    the box whose three passes have variance sigma^2 (Gwosdek et al. 2011), in the C code's
    float32 steps (L in double, then stored to float)."""
    # sigma^2 / 3 in float64, then rounded: the float32 value of C's float division (double
    # rounding is harmless for a float32 quotient). A float32 `sigma * sigma / 3.0` is
    # rewritten by grappler's constant folding in a tf.function and then lands one ulp off for
    # ~40% of sigmas (at 0.3 the box radius follows: 7 of 4320 test values off by one).
    sigma2 = tf.cast(tf.cast(sigma * sigma, tf.float64) / 3.0, tf.float32)
    big_l = tf.cast(tf.sqrt(12.0 * tf.cast(sigma2, tf.float64) + 1.0), tf.float32)
    l = tf.cast(tf.floor((tf.cast(big_l, tf.float64) - 1.0) / 2.0), tf.float32)
    a = (2.0 * l + 1.0) * (l * (l + 1.0) - 3.0 * sigma2)
    a = a / (6.0 * (sigma2 - (l + 1.0) * (l + 1.0)))
    return l + a


def _box_pass(x, radius, ww, fw):
    """One `ImagingHorizontalBoxBlur` pass along axis 1 of (H, W, C) float32 integers 0..255:
    out[x] = (ww * sum(in[x-r..x+r]) + fw * (in[x-r-1] + in[x+r+1]) + 2^23) >> 24, indices
    clamped to the row (edge replication, also where the row is narrower than the box)."""
    n = tf.shape(x)[1]
    channels = x.shape[-1] or 3
    reps = tf.stack([1, radius + 1, 1])
    # e[j] = in[clamp(j - r - 1)], j in [0, n + 2r + 2): in[x+k] is e[x+k+r+1].
    e = tf.concat([tf.tile(x[:, :1], reps), x, tf.tile(x[:, -1:], reps)], axis=1)
    # Sums of at most 2r+1 integers <= 255 are exact in float32; the weighted sum (< 2^33)
    # needs float64, where it is exact too, and so is the division by 2^24 and the floor.
    ones = tf.ones(tf.stack([1, 2 * radius + 1, channels, 1]), tf.float32)
    window = tf.nn.depthwise_conv2d(e[None, :, 1:-1], ones, [1, 1, 1, 1], 'VALID')[0]
    far = e[:, :n] + e[:, 2 * radius + 2:]
    total = tf.cast(window, tf.float64) * ww + tf.cast(far, tf.float64) * fw + float(1 << 23)
    return tf.cast(tf.floor(total * (1.0 / (1 << 24))), tf.float32)


def blur_sample(image, sigma):
    """PIL's `ImageFilter.GaussianBlur(sigma)` (libImaging/BoxBlur.c), pixel for pixel.

    PIL approximates a Gaussian of standard deviation `sigma` px with three passes of an
    extended box filter (fractional radius from `_gaussian_blur_radius`) along x, then three
    along y, each pass in 8.24 fixed point and truncated to uint8, edges replicated. This is the
    same arithmetic in graph ops, exact, with the box radius a tensor, so `sigma` may vary per
    sample. sigma == 0 is an identity (the box radius is 0). Below `_MIN_BLUR_SIGMA` PIL's
    result is exactly the input too; above it even a small sigma moves pixels next to strong
    edges by a level or more, as PIL does."""
    image = tf.convert_to_tensor(image, tf.uint8)
    box = _pil_box_radius(tf.cast(sigma, tf.float32))
    radius = tf.cast(box, tf.int32)  # C's (int) truncation
    # C: (UINT32)(1 << 24) / (box * 2 + 1) is a float32 division, truncated on assignment.
    ww = tf.cast(tf.constant(float(1 << 24), tf.float32) / (box * 2.0 + 1.0), tf.int64)
    # fw >= 0: ww is largest at an integer box, and there (2r+1) ww <= 2^24 (checked, r < 5000).
    fw = ((1 << 24) - (2 * tf.cast(radius, tf.int64) + 1) * ww) // 2
    ww, fw = tf.cast(ww, tf.float64), tf.cast(fw, tf.float64)
    x = tf.cast(image, tf.float32)
    for _ in range(3):
        x = _box_pass(x, radius, ww, fw)
    x = tf.transpose(x, [1, 0, 2])  # PIL transposes too and blurs the rows again
    for _ in range(3):
        x = _box_pass(x, radius, ww, fw)
    out = tf.cast(tf.transpose(x, [1, 0, 2]), tf.uint8)
    out.set_shape(image.shape)
    return out


def grayscale_sample(image):
    """ITU-R 601 luma on 3 channels, in PIL convert('L')'s fixed point (what torchvision's
    RandomGrayscale does to a PIL image): (19595 R + 38470 G + 7471 B + 2^15) >> 16."""
    rgb = tf.cast(tf.convert_to_tensor(image, tf.uint8), tf.int32)
    luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 32768) // 65536
    return tf.cast(tf.stack([luma] * 3, axis=-1), tf.uint8)


def augment(image, landmarks, seed, config=None, flip_permutation=None):
    """The original's augmentation chain (spec 10) on one sample, deterministic in `seed`.

    image uint8 (H, W, 3), landmarks float32 (N, 2), seed int32/int64 shape [2]; config: dict or
    ml_collections-like (see `default_augment_config`); flip_permutation: the landmark set's
    table (new[i] = old[P[i]]), needed when flipping is enabled. Returns (image, landmarks).
    """
    cfg = _resolve(config)
    image, landmarks = _tensors(image, landmarks)
    seeds = tf.random.experimental.stateless_split(seed, len(OPS), alg=_ALG)
    h, w = _hw(image)
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)

    def translate(img, lms, u):
        span = 2.0 * cfg['translate_max_px']
        # float -> int casts truncate toward zero, like Python's int().
        return translate_sample(img, lms, tf.cast((u[0] - 0.5) * span, tf.int32),
                                tf.cast((u[1] - 0.5) * span, tf.int32))

    def occlusion(img, lms, u):
        oh = tf.cast(hf * cfg['occlusion_max_frac'] * u[0], tf.int32)
        ow = tf.cast(wf * cfg['occlusion_max_frac'] * u[1], tf.int32)
        x0 = tf.cast(tf.cast(w - ow - 10, tf.float32) * u[2], tf.int32)
        y0 = tf.cast(tf.cast(h - oh - 10, tf.float32) * u[3], tf.int32)
        return occlude_sample(img, lms, x0, y0, ow, oh, tf.cast(u[4:7] * 255.0, tf.int32))

    def flip(img, lms, u):
        return flip_sample(img, lms, flip_permutation)

    def rotate(img, lms, u):
        return rotate_sample(img, lms, (2.0 * u[0] - 1.0) * cfg['rotate_max_deg'])

    def blur(img, lms, u):
        return blur_sample(img, cfg['blur_max_radius'] * u[0]), lms

    def gray(img, lms, u):
        return grayscale_sample(img), lms

    fns = {'translate': translate, 'occlusion': occlusion, 'flip': flip, 'rotate': rotate,
           'blur': blur, 'gray': gray}
    for name in cfg['order']:
        prob = cfg[f'{name}_prob']
        if prob <= 0:  # statically off: no graph ops at all
            continue
        if name == 'flip' and flip_permutation is None:
            raise ValueError('flip_prob > 0 needs flip_permutation')
        u = tf.random.stateless_uniform([_NUM_DRAWS[name]], seeds[OPS.index(name)], alg=_ALG)
        apply = u[0] < prob
        if name == 'blur':
            apply &= cfg['blur_max_radius'] * u[1] >= _MIN_BLUR_SIGMA
        # tf.cond builds both branches right here, so closing over loop variables is safe.
        image, landmarks = tf.cond(apply, lambda: fns[name](image, landmarks, u[1:]),
                                   lambda: (image, landmarks))
    return image, landmarks
