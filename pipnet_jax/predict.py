"""--mode=predict: landmarks for an image, a folder of images, a video or a camera.

Images: a folder runs in chunks of `predict.batch_size` images; each chunk is one batched
detection and one batched pass of all its faces' crops (the same landmarks as one image at a
time, faster). Video and camera: faces are tracked between frames and keep an id while they
are followed (tracking.FaceTracker); a camera (`predict.input=0`) runs until
`predict.max_frames` frames or Ctrl-C.

Writes overlays (images: <name>.jpg; video: <name>_landmarks.mp4/.avi, camera:
camera<index>_landmarks.avi, with the same frames), optional iBUG .pts files per image, and the
points as landmarks.json and landmarks.csv into the output folder. A folder run goes on past
unreadable files and reports them at the end."""
import csv
import os
import time
from typing import Optional

import cv2
import numpy as np
from tqdm import tqdm

from pipnet_jax.detection import make_detector
from pipnet_jax.errors import UserError
from pipnet_jax.files import (IMAGE_EXTENSIONS, ImageReadError, atomic_path, atomic_write_text,
                              read_image, write_image_atomic, write_json_atomic)
from pipnet_jax.inference import Predictor
from pipnet_jax.landmarks import wflw98_to_68
from pipnet_jax.tracking import FaceTracker


class InputError(UserError, ValueError):
    """An input the user gave that cannot be used (the message says which and why)."""


VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
CSV_COLUMNS = ["source", "frame", "face", "point", "x", "y", "confidence"]


def make_predictor(config, workdir):
    p = config.predict
    kwargs = {}
    if p.detector == "faceboxes":
        kwargs = dict(weights_path=p.faceboxes_weights or None, score_threshold=p.score_threshold)
    detector = make_detector(p.detector, **kwargs)
    if p.torch_checkpoint:
        return Predictor.from_torch_checkpoint(p.torch_checkpoint, dataset=p.torch_dataset,
                                               backbone=config.model.backbone,
                                               batch_size=p.batch_size, detector=detector,
                                               backend=p.backend)
    return Predictor.from_workdir(workdir, batch_size=p.batch_size, detector=detector, backend=p.backend)


def camera_index(source: str) -> Optional[int]:
    """A camera index ('0', '1', ...) unless a file or folder of that name exists."""
    source = str(source).strip()
    return int(source) if source.isdigit() and not os.path.exists(source) else None


def open_capture(source):
    """The frame source of a video file or a camera index (cv2.VideoCapture). The one place
    frames come from: a test replaces it with a fake capture (isOpened, get, read, release)."""
    return cv2.VideoCapture(source)


# ----------------------------------------------------------------------------- outputs

def to_68(face):
    """WFLW 98 -> 68 points in the crop's normalised frame, as the original converts labels."""
    xmin, ymin, xmax, ymax = face.crop
    size = np.array([xmax - xmin + 1, ymax - ymin + 1], np.float64)
    origin = np.array([xmin, ymin], np.float64)
    face.landmarks = wflw98_to_68((face.landmarks - origin) / size) * size + origin
    face.confidence = wflw98_to_68(np.stack([face.confidence] * 2, -1))[:, 0]
    return face


def draw(image_bgr, faces):
    out = image_bgr.copy()
    radius = max(1, round(min(out.shape[:2]) / 300))
    for face in faces:
        x0, y0, x1, y1 = (int(v) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 0, 255), max(1, radius))
        for x, y in face.landmarks:
            cv2.circle(out, (int(round(x)), int(round(y))), radius, (0, 255, 0), -1)
    return out


def face_record(face, face_id: int) -> dict:
    """One face in landmarks.json; `id` is its index in the image, or its track id in a video."""
    return {"id": int(face_id), "box": [round(float(v), 2) for v in face.box],
            "score": round(face.score, 4), "landmarks": np.round(face.landmarks, 3).tolist(),
            "confidence": np.round(face.confidence, 4).tolist()}


def write_outputs(output, records):
    write_json_atomic(os.path.join(output, "landmarks.json"), {"results": records})
    with atomic_path(os.path.join(output, "landmarks.csv")) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in records:
            for k, face in enumerate(r.get("faces", [])):
                for i, ((x, y), c) in enumerate(zip(face["landmarks"], face["confidence"])):
                    w.writerow([r["source"], r.get("frame", ""), face.get("id", k), i, x, y, c])


def pts_text(landmarks) -> str:
    """The iBUG / 300W .pts format: 'version: 1', 'n_points: N', '{', N lines 'x y', '}'."""
    lines = ["version: 1", f"n_points: {len(landmarks)}", "{"]
    lines += [f"{x:.3f} {y:.3f}" for x, y in np.asarray(landmarks, np.float64)]
    return "\n".join(lines + ["}"]) + "\n"


def write_pts(output: str, name: str, faces) -> list:
    """<name>.pts for an image with one face, <name>_<k>.pts for face k of several (k as in
    landmarks.csv); nothing for no face. Each file written atomically."""
    paths = []
    for k, face in enumerate(faces):
        path = os.path.join(output, f"{name}.pts" if len(faces) == 1 else f"{name}_{k}.pts")
        atomic_write_text(path, pts_text(face.landmarks))
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- images

def image_faces(predictor, paths, batch_size: int):
    """(path, RGB image, faces) per path, in order, or (path, None, error message) for a file
    that cannot be read. Runs in chunks of batch_size images: Predictor.predict_many detects
    the chunk in one batched call and runs all its faces' crops together."""
    for start in range(0, len(paths), max(1, batch_size)):
        chunk = []
        for path in paths[start:start + max(1, batch_size)]:
            try:
                chunk.append((path, read_image(path)))
            except ImageReadError:
                chunk.append((path, None))
        readable = [image for _, image in chunk if image is not None]
        results = iter(predictor.predict_many(readable) if readable else [])
        for path, image in chunk:
            if image is None:
                yield path, None, (f"{path}: cannot read the image (missing, not an image, "
                                   f"damaged or truncated)")
            else:
                yield path, image, next(results)


def predict_images(predictor, paths, output, convert_68=False, batch_size: int = 1,
                   pts: bool = False):
    """Returns (records, failures); each image's overlay (and .pts) is written as it is done."""
    records, failures = [], []
    bar = tqdm(total=len(paths), desc="predict", unit="image", disable=len(paths) < 2)
    for path, image, faces in image_faces(predictor, paths, batch_size):
        bar.update(1)
        if image is None:
            failures.append(faces)
            records.append({"source": path, "error": faces})
            continue
        if convert_68:
            faces = [to_68(f) for f in faces]
        if not faces:
            tqdm.write(f"{path}: no face found")
        name = output_name(path)
        write_image_atomic(os.path.join(output, f"{name}.jpg"),
                           draw(image[..., ::-1], faces)[..., ::-1])
        if pts:
            write_pts(output, name, faces)
        records.append({"source": path, "faces": [face_record(f, k) for k, f in enumerate(faces)]})
    bar.close()
    return records, failures


# ----------------------------------------------------------------------------- video, camera

def predict_video(predictor, source, output, p):
    """A video file (path) or a camera (int index): overlay video + one record per frame; a
    face's `id` is its track id. Stops at the end of the source, after p.max_frames frames
    (0: no limit) or on Ctrl-C (what was done is kept)."""
    camera = isinstance(source, int)
    label = f"camera:{source}" if camera else source
    cap = open_capture(source)
    if not cap.isOpened():
        if camera:
            raise InputError(f"camera {source}: cannot open it (no such camera, no permission, "
                             f"or in use by another program)")
        raise InputError(f"{source}: cannot open the video (missing file or unsupported codec)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and fps > 0 else 30.0  # cameras often report 0
    frames = None if camera else int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = frames if frames and frames > 0 else None
    if p.max_frames > 0:
        frames = min(frames or p.max_frames, p.max_frames)
    if camera:
        name, mp4 = f"camera{source}", False
    else:
        name, ext = os.path.splitext(os.path.basename(source))
        mp4 = ext.lower() == ".mp4"
    out_path = os.path.join(output, f"{name}_landmarks{'.mp4' if mp4 else '.avi'}")
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if mp4 else "MJPG"))
    tracker = FaceTracker(predictor, fps=fps, redetect_every=p.redetect_every,
                          min_confidence=p.min_confidence, smooth=p.smooth,
                          min_cutoff=p.min_cutoff, beta=p.beta)
    writer, records = None, []
    try:
        with tqdm(total=frames, desc="camera" if camera else "video", unit="frame") as bar:
            while not p.max_frames or len(records) < p.max_frames:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                if writer is None:
                    writer = cv2.VideoWriter(out_path, fourcc, fps, (bgr.shape[1], bgr.shape[0]))
                tracked = tracker.track(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                if p.to_68:
                    tracked = [(i, to_68(f)) for i, f in tracked]
                writer.write(draw(bgr, [f for _, f in tracked]))
                records.append({"source": label, "frame": len(records),
                                "faces": [face_record(f, i) for i, f in tracked]})
                bar.update(1)
    except KeyboardInterrupt:  # a camera runs until stopped: keep what was done
        print(f"stopped after {len(records)} frames")
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if not records:
        raise InputError(f"camera {source}: no frame could be read" if camera else
                         f"{source}: the video has no readable frames")
    return records, out_path


# ----------------------------------------------------------------------------- the mode

def output_name(path: str) -> str:
    """The base name of an input's outputs: its file name with the extension kept in it
    ('face.jpg' -> 'face_jpg', 'face.png' -> 'face_png'), so two inputs of one folder never
    share an overlay, and an overlay ('<name>.jpg') is never named as an input."""
    stem, ext = os.path.splitext(os.path.basename(path))
    return f"{stem}_{ext.lstrip('.').lower()}" if ext else stem


def check_output(output: str, source: str) -> None:
    """Outputs never replace inputs: the output folder may not be the input folder (inputs are
    that folder's images, or the one file)."""
    out = os.path.realpath(output)
    folder = os.path.realpath(source if os.path.isdir(source) else os.path.dirname(source) or ".")
    if out == folder:
        raise InputError(f"predict.output={output!r} is the input folder: the overlays would sit among "
                         f"(and could replace) your images; give another --config.predict.output")


def list_images(folder: str) -> list:
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise InputError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    return paths


def run_predict(config, workdir: str) -> dict:
    p = config.predict
    source = str(p.input).strip()
    if not source:
        raise InputError("give --config.predict.input=IMAGE, FOLDER, VIDEO or a camera index (0)")
    camera = camera_index(source)
    if camera is None and not os.path.exists(source):
        raise FileNotFoundError(f"predict.input {source} does not exist")
    if p.batch_size < 1:
        raise InputError(f"predict.batch_size must be >= 1, got {p.batch_size}")
    if p.max_frames < 0:
        raise InputError(f"predict.max_frames must be >= 0 (0: no limit), got {p.max_frames}")
    video = camera is not None or source.lower().endswith(VIDEO_EXTS)
    paths = list_images(source) if os.path.isdir(source) else [source]
    output = p.output or os.path.join(workdir, "predict")
    if not video:
        check_output(output, source)
    os.makedirs(output, exist_ok=True)
    predictor = make_predictor(config, workdir)
    failures, start = [], time.perf_counter()
    if video:
        records, video_path = predict_video(predictor, source if camera is None else camera,
                                            output, p)
        print(f"wrote {video_path}")
    else:
        records, failures = predict_images(predictor, paths, output, p.to_68, p.batch_size,
                                           p.pts)
    seconds = time.perf_counter() - start
    found = sum(len(r.get("faces", [])) for r in records)
    write_outputs(output, records)
    print(f"{len(records)} {'frames' if video else 'images'}, {found} faces in {seconds:.1f} s "
          f"({found / max(seconds, 1e-9):.1f} faces/s, network on {predictor.backend}) -> "
          f"{output}/landmarks.json, landmarks.csv")
    if failures:
        print(f"{len(failures)} file(s) failed:\n  " + "\n  ".join(failures))
        if len(failures) == len(paths):  # nothing could be read: a failed run, not an empty one
            raise InputError(f"{source}: no input could be read ({failures[0]})")
    return {"records": records, "failures": failures, "output": output, "seconds": seconds}
