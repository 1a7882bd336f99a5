"""Corpora of parts (data.corpus.concatenate), the stc.corpus.sets spelling: raw sets built
with a crop rule on first use (stc.corpus_spec.prepare_corpus), and whole images whose
faces are detected (data.corpus.detected, stc.corpus.detect)."""
import os
import pathlib

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import cv2
import numpy as np
import pytest

import tf_threads  # noqa: F401,E402  (thread limits before the first TF op)

from pipnet_jax.data import annotations as A
from pipnet_jax.data import pseudo_labels as P
from pipnet_jax.data import synthetic
from pipnet_jax.data.corpus import CorpusError
from pipnet_jax.stc.corpus_spec import open_corpus, prepare_corpus
from raw_sets import add_wflw_subset_lists, jpeg_round_trip, raw_set, write_cofw


def image_folder(root, names, seed):
    """PNG (lossless) 256x256 noise images under root -> str(root)."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in names:
        cv2.imwrite(str(root / name), rng.integers(0, 255, (256, 256, 3), np.uint8))
    return str(root)


@pytest.fixture
def folders(tmp_path):
    return {'a': image_folder(tmp_path / 'a', ['x.png', 'y.png'], 0),
            'b': image_folder(tmp_path / 'b', ['x.png'], 1),  # same file name as in a
            'c': image_folder(tmp_path / 'c', ['z.png'], 2)}


def test_parts_keep_order_and_unique_ids(folders):
    corpus = open_corpus({'parts': {'a': folders['a'], 'b': folders['b']}})
    assert corpus.ids == ['a/x.png', 'a/y.png', 'b/x.png']
    a, b = open_corpus(folders['a']), open_corpus(folders['b'])
    for i, (part, j) in enumerate([(a, 0), (a, 1), (b, 0)]):
        np.testing.assert_array_equal(corpus.load(i), part.load(j))
    assert [it.id for it in corpus.shard_items(0, 2)] == ['a/x.png', 'a/y.png']
    assert [(it.index, it.id) for it in corpus.shard_items(1, 2)] == [(2, 'b/x.png')]
    assert corpus.description == {
        'kind': 'parts', 'count': 3,
        'parts': [{'name': 'a', **a.description}, {'name': 'b', **b.description}]}
    bad = pathlib.Path(folders['b']) / 'x.png'
    bad.write_bytes(b'not an image')  # a part's error names its file
    with pytest.raises(CorpusError, match=f'x.png: .*{bad}'):
        corpus.load(2)
    with pytest.raises(ValueError, match='at least one part'):
        open_corpus({'parts': {}})
    with pytest.raises(ValueError, match='without "/"'):
        open_corpus({'parts': {'a/b': folders['a']}})


def test_manifest_accepts_the_same_parts_only(folders, tmp_path):
    def corpus(**parts):
        return open_corpus({'parts': {name: folders[f] for name, f in parts.items()}})

    labelled = corpus(a='a', b='b')
    out = tmp_path / 'pseudo'
    m = P.Manifest.open(out, 'teacher', labelled.description, 2, len(labelled))
    m.write(0, [{'id': it.id, 'image': labelled.load(it), 'task': 'std',
                 'landmarks': np.zeros((3, 2), np.float32), 'confidence': np.ones(3, np.float32)}
                for it in labelled.shard_items(0, 2)])
    same = corpus(a='a', b='b')  # opened again: the pass resumes
    assert P.Manifest.open(out, 'teacher', same.description, 2, len(same)).pending() == [1]
    # Same count (3), other parts: swapped, another folder, a renamed part.
    for other in (corpus(b='b', a='a'), corpus(a='a', b='c'), corpus(a='a', d='b')):
        assert len(other) == len(labelled)
        with pytest.raises(P.ManifestMismatch, match='corpus'):
            P.Manifest.open(out, 'teacher', other.description, 2, len(other))


# --- stc.corpus.sets: raw sets, built with a crop rule ------------------------------------------

@pytest.fixture(scope='module')
def raw_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp('raw')
    (root / 'cofw').mkdir()
    return {'cofw': str(write_cofw(root / 'cofw')),
            'wflw': str(add_wflw_subset_lists(raw_set(root / 'wflw', 3, 2)))}


def test_sets_are_built_with_their_gssl_crops(raw_dirs, tmp_path):
    data_dir = str(tmp_path / 'tfds')
    spec = {'sets': ('cofw:train:cofw_gssl', 'wflw:train:wflw_gssl'), 'manual_dirs': raw_dirs,
            'split': 'train'}  # as stc.corpus sets them
    corpus_spec = prepare_corpus(spec, data_dir)
    assert corpus_spec == {'parts': {
        'cofw:train': {'tfds': 'pipnet_cofw/cofw_gssl', 'split': 'train', 'data_dir': data_dir},
        'wflw:train': {'tfds': 'pipnet_wflw/wflw_gssl', 'split': 'train', 'data_dir': data_dir}}}
    corpus = open_corpus(corpus_spec)
    wflw = raw_dirs['wflw']
    expected = ([('cofw:train', r, 'cofw_gssl')
                 for r in A.read_cofw(os.path.join(raw_dirs['cofw'], 'COFW_train_color.mat'))]
                + [('wflw:train', r, 'wflw_gssl') for r in A.read_wflw(
                    synthetic.annotation_file(wflw, 'train'), os.path.join(wflw, 'WFLW_images'))])
    assert corpus.ids == [f'{part}/{r.name}#{r.index}' for part, r, _ in expected]
    assert corpus.ids[0] == 'cofw:train/cofw_train_0001.jpg#0' and len(corpus) == 6
    for i, (_, record, rule) in enumerate(expected):
        crop, _ = A.crop_face(None, record, rule)
        np.testing.assert_array_equal(corpus.load(i), jpeg_round_trip(crop), err_msg=corpus.ids[i])
        own, _ = A.crop_face(None, record)  # the sets' own crops differ
        assert not np.array_equal(crop, own)
    # Built once: reused without the raw folders.
    assert prepare_corpus({**spec, 'manual_dirs': {'cofw': '', 'wflw': ''}}, data_dir) == corpus_spec
    with pytest.raises(ValueError, match=r"'cofw:train' occurs twice"):
        prepare_corpus({'sets': ('cofw:train:cofw_gssl',) * 2}, data_dir)
    with pytest.raises(ValueError, match=r"pipnet_cofw/cofw_gssl has splits \['test', 'train'\]"):
        prepare_corpus({'sets': ('cofw:val:cofw_gssl',)}, data_dir)


def test_sets_errors_name_the_config_field(tmp_path):
    from configs.stc_300w_cofw_wflw import get_config
    spec = get_config().stc.corpus.to_dict()  # as run_stc
    assert spec['sets'] == ('cofw:train:cofw_gssl', 'wflw:train:wflw_gssl')
    with pytest.raises(FileNotFoundError, match=r"stc.corpus.manual_dirs.cofw='' is not a folder: "
                                                r"give the raw cofw data set \(COFW_train_color.mat"):
        prepare_corpus(spec, str(tmp_path))
    for bad in ('cofw', 'cofw:train:nope', 'celeba:train', 'custom:train', 'cofw:train:cofw:x'):
        with pytest.raises(ValueError, match=r"expected 'dataset:split\[:crop rule\]'"):
            prepare_corpus({'sets': (bad,)}, str(tmp_path))
    with pytest.raises(ValueError, match='leave stc.corpus.images empty'):
        prepare_corpus({**spec, 'images': '/data/crops'}, str(tmp_path))
    # Without sets the other fields pass through; the tfds split's default means nothing to a
    # folder or a box list.
    assert prepare_corpus({'images': 'x', 'boxes': 'y', 'split': 'train',
                           'manual_dirs': {'cofw': ''}}, '') == {'images': 'x', 'boxes': 'y'}
    assert prepare_corpus({'tfds': 't', 'split': 'test'}, '') == {'tfds': 't', 'split': 'test'}


# --- stc.corpus.detect: whole images, the most confident face detected ------------------------

FACEBOXES = 'pipnet_repo_assets/FaceBoxesV2/weights/FaceBoxesV2.pth'
# WFLW test images with one annotated face that FaceBoxesV2 finds alone (in group photos the
# most confident face is often an unannotated one); one size bucket (1024x768): one compile.
DETECTED_IMAGES = ('12--Group/12_Group_Large_Group_12_Group_Large_Group_12_327.jpg',
                   '12--Group/12_Group_Team_Organized_Group_12_Group_Team_Organized_Group_12_380.jpg',
                   '38--Tennis/38_Tennis_Tennis_38_117.jpg',
                   '56--Voter/56_Voter_peoplevoting_56_531.jpg')


@pytest.fixture(scope='module')
def photos(shared_data, tmp_path_factory):
    """A folder of whole images: the DETECTED_IMAGES (symlinks, nothing copied) + a flat grey
    image (no face) -> (folder, {id: GT face centre}, weights file)."""
    subset = shared_data / 'wflw_subset'
    root = tmp_path_factory.mktemp('photos')
    centres = {}
    for line in (subset / 'annotations' / 'wflw_test_subset_faces.txt').read_text().splitlines():
        tok = line.split()
        if tok[210] in DETECTED_IMAGES:
            assert tok[210] not in centres, f'{tok[210]}: one annotated face expected'
            centres[tok[210]] = np.array(tok[:196], np.float64).reshape(98, 2).mean(0)
    for name in DETECTED_IMAGES:
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).symlink_to(subset / 'WFLW_images' / name)
    cv2.imwrite(str(root / 'grey.png'), np.full((700, 1024, 3), 128, np.uint8))
    return str(root), centres, str(shared_data / FACEBOXES)


def test_detected_faces_are_demo_crops_of_the_annotated_face(photos, tmp_path):
    from pipnet_jax.crops import demo_crop
    from pipnet_jax.detection import FACEBOXES_SHA256
    from pipnet_jax.stc import corpus_spec as C
    from pipnet_jax.stc import pseudo_label
    root, centres, weights = photos
    misses = C.load_detector.cache_info().misses
    corpus = open_corpus({'images': root, 'detect': 'faceboxes', 'faceboxes_weights': weights})
    assert C.load_detector.cache_info().misses == misses  # lazy: loaded at the first item
    assert corpus.ids == list(DETECTED_IMAGES) + ['grey.png']
    detector = C.load_detector('faceboxes', **C.detector_settings('faceboxes', weights))
    for i, name in enumerate(DETECTED_IMAGES):
        image = cv2.cvtColor(cv2.imread(os.path.join(root, name)), cv2.COLOR_BGR2RGB)
        boxes = detector.detect(image)
        assert len(boxes) == 1, name
        xmin, ymin, xmax, ymax, _, _ = demo_crop(boxes[0], image.shape[1::-1], 1.2)
        (cx, cy) = centres[name]
        assert xmin <= cx < xmax and ymin <= cy < ymax, (name, boxes[0], centres[name])
        expected = cv2.resize(image[ymin:ymax, xmin:xmax], (256, 256),
                              interpolation=cv2.INTER_LINEAR)
        crop = corpus.load(i)
        assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
        np.testing.assert_array_equal(crop, expected, err_msg=name)
    with pytest.raises(CorpusError, match=r'grey.png: no face found \(faceboxes detector, '
                                          r'score_threshold=0.6\)'):
        corpus.load(4)
    # The pseudo-labeller records the faceless image as skipped, with the reason.
    out = tmp_path / 'pseudo'

    def predict(images):
        return np.full((len(images), 98, 2), 0.5, np.float32), np.ones((len(images), 98), np.float32)

    pseudo_label(predict, corpus, str(out), 'std', 'teacher', shard_size=8, batch_size=4,
                 log=lambda m: None)
    (shard,) = P.Manifest.load(out).shards.values()
    assert shard['count'] == 4
    assert [s['id'] for s in shard['skipped']] == ['grey.png']
    assert 'no face found' in shard['skipped'][0]['reason']
    # Another detector, or other settings, is another corpus: its pass is refused.
    haar = open_corpus({'images': root, 'detect': 'haar'})
    stricter = open_corpus({'images': root, 'detect': 'faceboxes', 'faceboxes_weights': weights,
                            'score_threshold': 0.9})
    assert corpus.description['detector'] == {'kind': 'faceboxes', 'score_threshold': 0.6,
                                              'weights_sha256': FACEBOXES_SHA256}
    assert haar.description['detector'] == {'kind': 'haar', 'scale_factor': 1.1,
                                            'min_neighbors': 3}
    for other in (haar, stricter):
        assert other.description != corpus.description
        with pytest.raises(P.ManifestMismatch, match='corpus'):
            P.Manifest.open(out, 'teacher', other.description, 8, len(other))


def test_detect_config_fields(photos, tmp_path):
    from configs.common import base_config, stc_config
    root, _, weights = photos
    c = stc_config(base_config())
    c.stc.corpus.images = root
    spec = c.stc.corpus.to_dict()  # as run_stc
    assert prepare_corpus(spec, '') == {'images': root}  # no detector: its settings dropped
    c.stc.corpus.detect = 'faceboxes'
    c.predict.faceboxes_weights = weights  # predict's detector settings are the corpus's
    spec = {k: v for k, v in c.stc.corpus.to_dict().items() if v}
    assert prepare_corpus(spec, '') == {'images': root, 'detect': 'faceboxes',
                                        'faceboxes_weights': weights, 'score_threshold': 0.6}
    assert prepare_corpus({**spec, 'detect': 'haar'}, '') == {'images': root, 'detect': 'haar'}
    with pytest.raises(ValueError, match=r"stc.corpus.detect='yolo': expected one of "
                                         r"\('faceboxes', 'haar'\)"):
        prepare_corpus({**spec, 'detect': 'yolo'}, '')
    missing = str(tmp_path / 'FaceBoxesV2.pth')
    with pytest.raises(FileNotFoundError, match=f"stc.corpus.faceboxes_weights='{missing}'"):
        prepare_corpus({**spec, 'faceboxes_weights': missing}, '')
    with pytest.raises(ValueError, match='set it and no other corpus field'):
        prepare_corpus({**spec, 'boxes': 'celeba_bboxes.txt'}, '')
    with pytest.raises(ValueError, match='leave stc.corpus.detect, stc.corpus.images empty'):
        prepare_corpus({**spec, 'sets': ('cofw:train',)}, '')
