"""Video tracking: persistent face ids across re-detections, box matching, One Euro filter."""
import numpy as np

from pipnet_jax.inference import Face
from pipnet_jax.tracking import FaceTracker, OneEuroFilter, match_boxes

LEFT, MIDDLE, RIGHT = [10, 10, 90, 90], [110, 10, 190, 90], [210, 10, 290, 90]


class ScriptedDetector:
    """Returns the next entry of `script` on each call (the last one again at the end)."""

    def __init__(self, script):
        self.script, self.calls = script, 0

    def detect(self, image):
        boxes = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return np.array([[*b, 0.9] for b in boxes], np.float32).reshape(-1, 5)


class BoxPredictor:
    """No network: a face's landmarks are its box's corners (so a track's box stays put)."""

    def __init__(self, detector):
        self.detector = detector

    def predict(self, frame, boxes):
        faces = []
        for b in np.asarray(boxes, np.float64):
            corners = np.array([[b[0], b[1]], [b[2], b[1]], [b[0], b[3]], [b[2], b[3]]])
            faces.append(Face(box=b[:4], crop=b[:4], landmarks=corners,
                              confidence=np.ones(4), score=0.9))
        return faces


def ids_by_position(tracker, frames):
    """Per frame: {left x of the face: its id}."""
    return [{round(face.landmarks[0, 0]): i for i, face in tracker.track(frame)}
            for frame in frames]


def test_ids_survive_detector_order_swaps_and_new_faces_get_new_ids():
    script = [[LEFT, MIDDLE], [MIDDLE, LEFT], [LEFT, MIDDLE], [MIDDLE, LEFT],
              [RIGHT, MIDDLE, LEFT],   # a third face appears
              [MIDDLE, RIGHT],         # the left one leaves
              [LEFT, MIDDLE, RIGHT]]   # ... and a face comes back there: a new face
    tracker = FaceTracker(BoxPredictor(ScriptedDetector(script)), redetect_every=1, smooth=False)
    frame = np.zeros((100, 300, 3), np.uint8)
    seen = ids_by_position(tracker, [frame] * len(script))
    assert seen[:4] == [{10: 0, 110: 1}] * 4
    assert seen[4] == {10: 0, 110: 1, 210: 2}
    assert seen[5] == {110: 1, 210: 2}
    assert seen[6] == {10: 3, 110: 1, 210: 2}   # ids are never reused


def test_ids_kept_between_detections_and_smoothing_follows_the_id():
    tracker = FaceTracker(BoxPredictor(ScriptedDetector([[LEFT, MIDDLE], [MIDDLE, LEFT]])),
                          redetect_every=2, smooth=True)
    frame = np.zeros((100, 300, 3), np.uint8)
    tracker.track(frame)
    smoother = {t.id: t.smoother for t in tracker.tracks}
    seen = ids_by_position(tracker, [frame] * 4)
    assert seen == [{10: 0, 110: 1}] * 4
    assert {t.id: t.smoother for t in tracker.tracks} == smoother  # each id kept its own filter
    assert [f.landmarks.shape for f in tracker(frame)] == [(4, 2), (4, 2)]  # __call__: faces only


def test_match_boxes_is_one_to_one_best_first():
    old = [LEFT, MIDDLE]
    new = [[12, 10, 92, 90], [15, 10, 95, 90], [400, 0, 450, 50]]
    assert match_boxes(old, new) == {0: 0}  # the best pair wins; the other cannot take it twice
    assert match_boxes(old, [MIDDLE, LEFT]) == {0: 1, 1: 0}
    assert match_boxes([], new) == {} and match_boxes(old, []) == {}


def test_one_euro_filter_passes_a_constant_and_damps_noise():
    f = OneEuroFilter(fps=30, min_cutoff=1.0, beta=0.0)
    x = np.full((3, 2), 5.0)
    assert np.allclose([f(x) for _ in range(5)][-1], x)
    rng = np.random.default_rng(0)
    g = OneEuroFilter(fps=30, min_cutoff=1.0, beta=0.0)
    noisy = rng.normal(0, 1, (50, 2))
    smooth = np.stack([g(v) for v in noisy])
    assert smooth[10:].std() < 0.5 * noisy[10:].std()
