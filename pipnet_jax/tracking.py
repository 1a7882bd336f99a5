"""Video: follow faces between frames and smooth their landmarks over time.

A face found by the detector is followed by moving and scaling its detector box with its
landmarks (no detection per frame); the detector runs again every `redetect_every` frames, or
when a face's mean confidence drops below `min_confidence`. Each track has an id that it keeps
while it is followed: a fresh detection takes over the id (and the smoothing state) of the track
whose box it overlaps most (one to one, IoU > 0.3), whatever the detector's order; a detection
that matches no track is a new face and gets the next id never used before. Landmarks are
smoothed with the One Euro filter (Casiez, Roussel, Vogel, CHI 2012): little lag on fast
motion, little jitter when still."""
import dataclasses
import math
from typing import Optional

import numpy as np


class OneEuroFilter:
    """Elementwise One Euro filter over arrays of a fixed shape; `fps` gives the time step."""

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.dt, self.min_cutoff, self.beta, self.d_cutoff = 1.0 / fps, min_cutoff, beta, d_cutoff
        self.x: Optional[np.ndarray] = None
        self.dx: Optional[np.ndarray] = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / self.dt)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x is None:
            self.x, self.dx = x, np.zeros_like(x)
            return x
        dx = (x - self.x) / self.dt
        a_d = self._alpha(self.d_cutoff)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.dx))
        self.x = a * x + (1 - a) * self.x
        return self.x


def iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(old: list, new: list, min_iou: float = 0.3) -> dict:
    """Greedy one-to-one matching {new index: old index}, highest IoU first, IoU > min_iou."""
    pairs = sorted(((iou(a, b), i, j) for j, a in enumerate(old) for i, b in enumerate(new)),
                   key=lambda p: -p[0])
    matched, used = {}, set()
    for overlap, i, j in pairs:
        if overlap <= min_iou:
            break
        if i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched


@dataclasses.dataclass
class Track:
    id: int                     # the face's identity while it is followed (0, 1, 2, ...)
    box: np.ndarray             # detector-style box used for this frame's crop
    anchor: tuple               # (box, landmark centroid, landmark spread) at the last detection
    smoother: OneEuroFilter
    landmarks: Optional[np.ndarray] = None
    confidence: float = 0.0


class FaceTracker:
    """Per frame: boxes to crop (tracked or freshly detected), then smoothed landmarks."""

    def __init__(self, predictor, fps: float = 30.0, redetect_every: int = 30,
                 min_confidence: float = 0.2, smooth: bool = True, min_cutoff: float = 1.0,
                 beta: float = 0.05):
        self.predictor, self.fps = predictor, fps
        self.redetect_every, self.min_confidence, self.smooth = redetect_every, min_confidence, smooth
        self.filter_args = dict(min_cutoff=min_cutoff, beta=beta)
        self.tracks: list[Track] = []
        self.frames_since_detection = 0
        self.next_id = 0

    def _detect(self, frame):
        boxes = [np.asarray(det[:4], np.float64) for det in self.predictor.detector.detect(frame)]
        # a face seen before keeps its id and its filter (smoothing survives re-detection)
        matched = match_boxes([t.box for t in self.tracks], boxes)
        new = []
        for i, box in enumerate(boxes):
            if i in matched:
                old = self.tracks[matched[i]]
                track_id, smoother = old.id, old.smoother
            else:
                track_id, smoother = self.next_id, OneEuroFilter(self.fps, **self.filter_args)
                self.next_id += 1
            new.append(Track(id=track_id, box=box, anchor=(box, None, None), smoother=smoother))
        self.tracks, self.frames_since_detection = new, 0

    def __call__(self, frame) -> list:
        """Faces (inference.Face) of one RGB frame, landmarks smoothed."""
        return [face for _, face in self.track(frame)]

    def track(self, frame) -> list:
        """(track id, inference.Face) for each face of one RGB frame, landmarks smoothed."""
        lost = any(t.confidence < self.min_confidence for t in self.tracks if t.landmarks is not None)
        if not self.tracks or lost or self.frames_since_detection >= self.redetect_every:
            self._detect(frame)
        self.frames_since_detection += 1
        if not self.tracks:
            return []
        faces = self.predictor.predict(frame, np.stack([t.box for t in self.tracks]))
        for track, face in zip(self.tracks, faces):
            raw = face.landmarks
            if self.smooth:
                face.landmarks = track.smoother(raw)
            track.landmarks, track.confidence = raw, float(np.mean(face.confidence))
            centroid, spread = raw.mean(0), raw.std(0).mean()
            box0, c0, s0 = track.anchor
            if c0 is None:  # first frame after a detection: remember where the box sat
                track.anchor = (box0, centroid, spread)
            else:  # move and scale the detector box with the landmarks for the next frame
                scale = spread / max(s0, 1e-6)
                centre = (box0[:2] + box0[2:]) / 2 + (centroid - c0)
                half = (box0[2:] - box0[:2]) / 2 * scale
                track.box = np.concatenate([centre - half, centre + half])
        return [(track.id, face) for track, face in zip(self.tracks, faces)]
