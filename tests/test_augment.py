"""pipnet_jax.data.augment: the original's augmentation (spec 10) as stateless TF graph ops.

Pixel convention (the original's, PIL's): x_norm * W is a continuous coordinate with 0 at the
left edge of pixel 0. A dot centred on pixel (i, j) therefore has the landmark
((i + 0.5) / W, (j + 0.5) / H), and a landmark l sits at pixel-index position l * size - 0.5,
which is where a dot's centroid (mean of its pixel indices) must be found.
"""
import itertools
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageFilter

import tf_threads  # noqa: F401,E402  (thread limits before the first TF op)

from pipnet_jax.data import augment as A
from pipnet_jax.landmarks import get_landmark_set

SIZE = 256
N = 12
SWAP_PAIRS = tuple(int(i) for i in np.arange(N).reshape(-1, 2)[:, ::-1].ravel())  # 1,0,3,2,..
COLOURS = np.array(list(itertools.product((60, 150, 240), repeat=3))[:N], np.uint8)
IDENTITY = tuple(range(N))


def only(**probs):
    """Config with every op off except the given probabilities."""
    cfg = A.default_augment_config()
    cfg.update({f'{op}_prob': 0.0 for op in A.OPS})
    cfg.update({f'{op}_prob': p for op, p in probs.items()})
    return cfg


def dot_image(seed, lo=0.3, hi=0.7):
    """Black image with N distinct-coloured 5x5 dots; [0.3, 0.7] keeps every dot inside the
    image after a 30 px translate followed by a 30 degree rotation."""
    rng = np.random.default_rng(seed)
    centres = []
    while len(centres) < N:
        p = rng.integers(int(lo * SIZE), int(hi * SIZE), 2)
        if all(np.abs(p - q).max() >= 8 for q in centres):
            centres.append(p)
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    for colour, (i, j) in zip(COLOURS, centres):
        img[j - 2:j + 3, i - 2:i + 3] = colour
    return img, ((np.array(centres) + 0.5) / SIZE).astype(np.float32)


def assert_on_features(img, lms, colour_of=IDENTITY):
    """Landmark k must lie within 1 px of the centroid of dot colour_of[k]."""
    img, lms = np.asarray(img), np.asarray(lms)
    for k, c in enumerate(colour_of):
        ys, xs = np.nonzero((img == COLOURS[c]).all(-1))
        assert len(xs) >= 15, f'dot {c} lost ({len(xs)} px)'
        np.testing.assert_allclose([xs.mean(), ys.mean()], lms[k] * SIZE - 0.5, atol=1.0,
                                   err_msg=f'landmark {k} / dot {c}')


def spec_rotate(lms, deg):
    t = np.radians(deg)
    d = lms.astype(np.float64) - 0.5
    return np.stack([0.5 + d[:, 0] * np.cos(t) + d[:, 1] * np.sin(t),
                     0.5 - d[:, 0] * np.sin(t) + d[:, 1] * np.cos(t)], 1)


@pytest.mark.parametrize('c,f', [(20, -13), (-29, 29), (0, 7)])
def test_translate_matches_pil_and_moves_landmarks(c, f):
    img, lms = dot_image(0)
    out, out_lms = A.translate_sample(img, lms, c, f)
    ref = Image.fromarray(img).transform((SIZE, SIZE), Image.AFFINE, (1, 0, c, 0, 1, f))
    np.testing.assert_array_equal(out.numpy(), np.asarray(ref))
    np.testing.assert_allclose(out_lms.numpy(), lms - np.array([c, f]) / SIZE, atol=1e-7)
    assert_on_features(out, out_lms)


def test_translate_clips_landmarks():
    lms = np.array([[0.01, 0.99], [0.99, 0.01], [0.5, 0.5]], np.float32)
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    out = A.translate_sample(img, lms, -20, 20)[1].numpy()
    np.testing.assert_allclose(out, np.clip(lms - np.array([-20, 20]) / SIZE, 0, 1), atol=1e-7)
    assert out[1, 0] == 1.0 and out[1, 1] == 0.0
    hits = 0
    for s in range(20):
        out = A.augment(img, lms, [s, 0], only(translate=1.0))[1].numpy()
        assert out.min() >= 0.0 and out.max() <= 1.0
        hits += np.isin(out[:2], [0.0, 1.0]).sum()
    assert hits > 20  # the edge points are clipped in most draws


@pytest.mark.parametrize('deg', [-30.0, -12.5, 0.0, 7.0, 30.0])
def test_rotate_matches_pil_and_spec_formula(deg):
    # Noise, so that any sub-pixel error in the sampling grid shows up against PIL.
    noise = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    out = A.rotate_sample(noise, np.zeros((1, 2), np.float32), deg)[0].numpy()
    ref = np.asarray(Image.fromarray(noise).rotate(deg))
    # PIL samples in 16.16 fixed point, so pixels within ~0.002 px of a sampling boundary may
    # pick the neighbour (up to ~0.16% of them at some angles).
    assert (out != ref).any(-1).mean() < 0.003
    img, lms = dot_image(1, 0.2, 0.8)
    out, out_lms = A.rotate_sample(img, lms, deg)
    np.testing.assert_allclose(out_lms.numpy(), spec_rotate(lms, deg), atol=1e-6)
    assert_on_features(out, out_lms)


def test_rotation_direction_is_counter_clockwise_on_screen():
    # A point right of the centre goes up (smaller y) for +30 deg, as PIL rotates the image.
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[126:131, 202:207] = COLOURS[0]  # dot centred on pixel (204, 128)
    lms = (np.array([[204, 128]] + [[128, 128]] * (N - 1)) + 0.5).astype(np.float32) / SIZE
    out, out_lms = A.rotate_sample(img, lms, 30.0)
    assert out_lms.numpy()[0, 1] < 0.5 - 0.1
    ys, xs = np.nonzero((out.numpy() == COLOURS[0]).all(-1))
    assert ys.mean() < 128 - 30


def test_flip_moves_dots_with_permutation():
    img, lms = dot_image(2)
    out, out_lms = A.flip_sample(img, lms, SWAP_PAIRS)
    np.testing.assert_array_equal(out.numpy(), img[:, ::-1])
    np.testing.assert_array_equal(out_lms.numpy()[:, 0], 1.0 - lms[np.array(SWAP_PAIRS), 0])
    assert_on_features(out, out_lms, colour_of=SWAP_PAIRS)


def test_flip_twice_is_identity():
    perm = get_landmark_set('wflw').flip_permutation
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    # Pixel-centre coordinates are dyadic, so 1 - (1 - x) is exact in float32; for arbitrary
    # floats it may be off by one ulp (1 - x rounds when x < 0.5).
    lms = ((rng.integers(0, SIZE, (98, 2)) + 0.5) / SIZE).astype(np.float32)
    out, out_lms = A.flip_sample(*A.flip_sample(img, lms, perm), perm)
    np.testing.assert_array_equal(out.numpy(), img)
    np.testing.assert_array_equal(out_lms.numpy(), lms)
    lms = rng.random((98, 2), np.float32)
    np.testing.assert_allclose(A.flip_sample(*A.flip_sample(img, lms, perm), perm)[1], lms,
                               atol=1e-7, rtol=0)


@pytest.mark.parametrize('op', ['translate', 'flip', 'rotate'])
def test_augment_single_op_keeps_landmarks_on_features(op):
    img, lms = dot_image(4)
    for s in range(4):
        out, out_lms = A.augment(img, lms, [s, 7], only(**{op: 1.0}), SWAP_PAIRS)
        assert_on_features(out, out_lms, SWAP_PAIRS if op == 'flip' else IDENTITY)
        assert not np.array_equal(out_lms.numpy(), lms)


def test_full_chain_keeps_landmarks_on_features():
    img, lms = dot_image(5)
    geometric = only(translate=1.0, flip=1.0, rotate=1.0)
    with_occlusion = only(translate=1.0, flip=1.0, rotate=1.0, occlusion=1.0)
    for s in range(6):
        out, out_lms = A.augment(img, lms, [s, 1], geometric, SWAP_PAIRS)
        assert_on_features(out, out_lms, SWAP_PAIRS)
        # Per-op seeds: adding occlusion leaves the other ops' draws, hence landmarks, alone.
        occ, occ_lms = A.augment(img, lms, [s, 1], with_occlusion, SWAP_PAIRS)
        np.testing.assert_array_equal(occ_lms.numpy(), out_lms.numpy())
        # Occlusion precedes rotate, so the rectangle is rotated: changed pixels share one colour.
        changed = (occ.numpy() != out.numpy()).any(-1)
        assert len(np.unique(occ.numpy()[changed], axis=0)) <= 1


def test_blur_and_gray_match_pil_and_keep_landmarks():
    rng = np.random.default_rng(6)
    noise = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    img = np.asarray(noise.resize((SIZE, SIZE), Image.BICUBIC))
    for sigma in (0.5, 2.0, 4.9):
        # PIL's GaussianBlur is three box blurs; blur_sample is the same fixed-point arithmetic.
        np.testing.assert_array_equal(A.blur_sample(img, sigma).numpy(), pil_blur(img, sigma))
    gray = A.grayscale_sample(img).numpy()
    np.testing.assert_array_equal(gray, np.repeat(np.asarray(Image.fromarray(img).convert('L'))
                                                  [..., None], 3, -1))
    lms = rng.random((N, 2), np.float32)
    for s in range(3):
        out, out_lms = A.augment(img, lms, [s, 2], only(blur=1.0, gray=1.0, occlusion=1.0))
        np.testing.assert_array_equal(out_lms.numpy(), lms)
        assert not np.array_equal(out.numpy(), img)


def pil_blur(img, radius):
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))


def face_like(h=64, w=64, seed=0):
    """Deterministic stand-in for a face crop: smooth shading, sensor noise, a sharp dark/light
    edge, and saturated 0 and 255 patches (the values where rounding bites)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    base = 120 + 50 * np.sin(xx / 7.0) * np.cos(yy / 11.0) + 40 * (yy / h - 0.5)
    img = np.stack([base + 25, base, base - 20], -1) + rng.normal(0, 10, (h, w, 3))
    img[:, (w * 5) // 8:] *= 0.25  # hard vertical edge
    img[h // 5:h // 5 + 6, w // 6:w // 6 + 9] = 255
    img[(h * 3) // 4:(h * 3) // 4 + 5, w // 3:w // 3 + 4] = 0
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def assert_blur_matches_pil(img, radius, out=None):
    """Within one grey level of PIL everywhere, and (as measured) identical at >= 99.9%."""
    out = A.blur_sample(img, radius).numpy() if out is None else np.asarray(out)
    diff = np.abs(out.astype(int) - pil_blur(img, radius))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert diff.max() <= 1, (radius, diff.max())
    assert (diff == 0).mean() >= 0.999, (radius, (diff == 0).mean())


@pytest.mark.parametrize('radius', [0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0])
def test_blur_matches_pil_gaussian_blur(radius):
    img = face_like()
    assert_blur_matches_pil(img, radius)
    assert not np.array_equal(A.blur_sample(img, radius).numpy(), img)


def test_blur_matches_pil_per_sample_sigma_in_graph_mode():
    # The radius as a tensor in graph mode (grappler on): per element of a tf.data map, and a
    # scalar argument of a tf.function. Bit-exact here, because a box radius one float32 ulp
    # off shows only as a few one-level differences, which the +-1 tolerance would hide: a
    # float32 sigma^2 / 3, once constant-folded in a tf.function, put 7 values off at 0.3.
    img = face_like(40, 36, seed=1)
    radii = np.concatenate([[0.0, 0.0766, 0.08, 0.1, 0.3, 0.33, 2.5, 4.45, 4.999],
                            np.random.default_rng(2).random(12) * 5]).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(radii).map(lambda r: A.blur_sample(img, r))
    blur = tf.function(A.blur_sample)
    for radius, out in zip(radii, ds.as_numpy_iterator()):
        ref = pil_blur(img, float(radius))
        np.testing.assert_array_equal(out, ref, err_msg=f'tf.data, radius {radius}')
        np.testing.assert_array_equal(blur(img, tf.constant(radius)).numpy(), ref,
                                      err_msg=f'tf.function, radius {radius}')


def test_blur_edges_impulse_and_narrow_images_match_pil():
    # One bright pixel: the impulse response (PIL's kernel, rounded per pass).
    impulse = np.zeros((21, 21, 3), np.uint8)
    impulse[10, 10] = 255
    for radius in (0.1, 0.5, 1.0, 2.5, 5.0):
        assert_blur_matches_pil(impulse, radius)
    # Edge pixels are replicated, also when the image is narrower than the box (box radius
    # 4.45 at sigma 5, so 2 * 4 + 1 taps over 5, 2 and 1 columns).
    img = face_like(24, 24, seed=3)
    for cols in (5, 2, 1):
        narrow = np.ascontiguousarray(img[:, :cols])
        for radius in (1.0, 5.0):
            assert_blur_matches_pil(narrow, radius)
            assert_blur_matches_pil(np.ascontiguousarray(narrow.transpose(1, 0, 2)), radius)


def test_min_blur_sigma_is_where_pil_stops_being_an_identity():
    # Every pixel value v between neighbours summing to every s in 0..510 (only the sum matters
    # to a pass whose box is < 1 px): [a, v, b] triples side by side, one row.
    v, s = np.meshgrid(np.arange(256), np.arange(511), indexing='ij')
    a = np.minimum(s, 255)
    row = np.stack([a, v, s - a], -1).reshape(1, -1, 1).repeat(3, -1).astype(np.uint8)
    bound = np.float32(0.07669634)  # the largest float32 radius where PIL is an identity
    assert A._MIN_BLUR_SIGMA <= bound
    for radius in (1e-3, 0.05, A._MIN_BLUR_SIGMA, bound):
        for img in (row, row.transpose(1, 0, 2)):
            np.testing.assert_array_equal(pil_blur(img, float(radius)), img)
    np.testing.assert_array_equal(A.blur_sample(row, bound).numpy(), row)
    above = np.nextafter(bound, np.float32(1))
    changed = pil_blur(row, float(above))
    assert (changed != row).any()  # the bound is tight: a 255 between two 0s becomes 254
    np.testing.assert_array_equal(A.blur_sample(row, above).numpy(), changed)
    # At small radii PIL is no identity near strong edges (a 0 next to 255s moves).
    img = face_like()
    assert (pil_blur(img, 0.2) != img).any()
    assert_blur_matches_pil(img, 0.2)


def test_augment_blur_is_pil_with_the_drawn_radius():
    img = face_like(48, 48, seed=4)
    lms = np.full((N, 2), 0.5, np.float32)
    cfg = only(blur=1.0)
    for s in range(6):
        seed = tf.constant([s, 5], tf.int64)
        # augment's draws for the blur op: u[0] < prob, radius = blur_max_radius * u[1].
        op_seed = tf.random.experimental.stateless_split(seed, len(A.OPS), alg=A._ALG)
        u = tf.random.stateless_uniform([A._NUM_DRAWS['blur']], op_seed[A.OPS.index('blur')],
                                        alg=A._ALG).numpy()
        radius = np.float32(cfg['blur_max_radius']) * u[1]
        out = A.augment(img, lms, seed, cfg)[0].numpy()
        expected = pil_blur(img, float(radius)) if radius >= A._MIN_BLUR_SIGMA else img
        np.testing.assert_array_equal(out, expected)


def test_deterministic_and_graph_mode():
    img, lms = dot_image(7)
    cfg = ml_collections.ConfigDict(only(translate=1.0, occlusion=1.0, flip=1.0, rotate=1.0,
                                         blur=1.0, gray=1.0))
    seeds = np.array([[s, 11] for s in range(4)], np.int64)
    eager = [A.augment(img, lms, s, cfg, SWAP_PAIRS) for s in seeds]
    again = A.augment(img, lms, seeds[0], cfg, SWAP_PAIRS)
    np.testing.assert_array_equal(again[0].numpy(), eager[0][0].numpy())
    np.testing.assert_array_equal(again[1].numpy(), eager[0][1].numpy())
    assert not np.array_equal(eager[0][1].numpy(), eager[1][1].numpy())
    assert not np.array_equal(eager[0][0].numpy(), eager[1][0].numpy())
    ds = tf.data.Dataset.from_tensor_slices(seeds).map(
        lambda s: A.augment(img, lms, s, cfg, SWAP_PAIRS))
    for (g_img, g_lms), (e_img, e_lms) in zip(ds, eager):
        assert g_img.shape == (SIZE, SIZE, 3) and g_lms.shape == (N, 2)
        np.testing.assert_array_equal(g_img.numpy(), e_img.numpy())
        np.testing.assert_allclose(g_lms.numpy(), e_lms.numpy(), atol=1e-6)


def test_probabilities_with_default_config():
    # Red/blue checkerboard: only blur creates new colours (translate/rotate add black,
    # occlusion one flat colour, gray maps each to one luma), and only gray makes R == G == B.
    board = (np.indices((SIZE, SIZE)) // 4).sum(0) % 2
    img = np.where(board[..., None] == 1, [255, 0, 0], [0, 0, 255]).astype(np.uint8)
    lms = np.array([[0.35, 0.4], [0.65, 0.45], [0.5, 0.65]], np.float32)
    n = 400
    ds = tf.data.Dataset.range(n).map(
        lambda s: A.augment(img, lms, tf.stack([s, 2024]), None, (0, 1, 2)))
    flips = blurs = grays = 0
    for out, out_lms in ds.as_numpy_iterator():
        d1, d2 = out_lms[1] - out_lms[0], out_lms[2] - out_lms[0]
        flips += d1[0] * d2[1] - d1[1] * d2[0] < 0  # a reflection reverses the orientation
        colours = np.unique(out.reshape(-1, 3).astype(np.int32) @ [65536, 256, 1])
        blurs += len(colours) > 4
        grays += (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    # PIL's blur changes no uint8 value on this 0/255 board below radius ~0.1085 (a pass moves a
    # 0 next to one 255 only once fw * 255 + 2^23 >= 2^24): p = 0.3 * (1 - 0.1085 / 5).
    for count, p in ((flips, 0.5), (blurs, 0.3 * (1 - 0.1085 / 5)), (grays, 0.2)):
        assert abs(count - n * p) <= 4 * np.sqrt(n * p * (1 - p)), (count, p)


def test_config_errors():
    img, lms = dot_image(8)
    with pytest.raises(ValueError, match='unknown'):
        A.augment(img, lms, [0, 0], {'flip_p': 1.0}, SWAP_PAIRS)
    with pytest.raises(ValueError, match='order'):
        A.augment(img, lms, [0, 0], {'order': ['flip', 'flip']}, SWAP_PAIRS)
    with pytest.raises(ValueError, match='flip_permutation'):
        A.augment(img, lms, [0, 0])
    out, out_lms = A.augment(img, lms, [0, 0], only())  # everything off: unchanged
    np.testing.assert_array_equal(out.numpy(), img)
    np.testing.assert_array_equal(out_lms.numpy(), lms)
