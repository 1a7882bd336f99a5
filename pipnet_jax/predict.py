"""--mode=predict: landmarks for an image, a folder of images or a video.

Writes overlays (images: <name>.jpg; video: <name>_landmarks.mp4/.avi with the same frames)
and the points as landmarks.json and landmarks.csv into the output folder. A folder run goes
on past unreadable files and reports them at the end."""
import csv
import os

import cv2
import numpy as np
from tqdm import tqdm

from pipnet_jax.detection import make_detector
from pipnet_jax.errors import UserError
from pipnet_jax.files import IMAGE_EXTENSIONS, atomic_path, write_image_atomic, write_json_atomic
from pipnet_jax.inference import Predictor
from pipnet_jax.landmarks import wflw98_to_68
from pipnet_jax.tracking import FaceTracker


class InputError(UserError, ValueError):
    """An input the user gave that cannot be used (the message says which and why)."""


VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def make_predictor(config, workdir):
    p = config.predict
    kwargs = {}
    if p.detector == "faceboxes":
        kwargs = dict(weights_path=p.faceboxes_weights or None, score_threshold=p.score_threshold)
    detector = make_detector(p.detector, **kwargs)
    if p.torch_checkpoint:
        return Predictor.from_torch_checkpoint(p.torch_checkpoint, dataset=p.torch_dataset,
                                               backbone=config.model.backbone,
                                               batch_size=p.batch_size, detector=detector)
    return Predictor.from_workdir(workdir, batch_size=p.batch_size, detector=detector)


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


def face_record(face):
    return {"box": [round(float(v), 2) for v in face.box], "score": round(face.score, 4),
            "landmarks": np.round(face.landmarks, 3).tolist(),
            "confidence": np.round(face.confidence, 4).tolist()}


def write_outputs(output, records):
    write_json_atomic(os.path.join(output, "landmarks.json"), {"results": records})
    with atomic_path(os.path.join(output, "landmarks.csv")) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "frame", "face", "point", "x", "y", "confidence"])
        for r in records:
            for k, face in enumerate(r.get("faces", [])):
                for i, ((x, y), c) in enumerate(zip(face["landmarks"], face["confidence"])):
                    w.writerow([r["source"], r.get("frame", ""), k, i, x, y, c])


def predict_images(predictor, paths, output, convert_68=False):
    """Returns (records, failures); each image's overlay is written as it is done."""
    records, failures = [], []
    for path in tqdm(paths, desc="predict", unit="image", disable=len(paths) < 2):
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            failures.append(f"{path}: cannot read the image (missing, not an image, or damaged)")
            records.append({"source": path, "error": failures[-1]})
            continue
        faces = predictor.predict(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if convert_68:
            faces = [to_68(f) for f in faces]
        if not faces:
            print(f"{path}: no face found")
        name = os.path.splitext(os.path.basename(path))[0]
        write_image_atomic(os.path.join(output, f"{name}.jpg"), draw(bgr, faces)[..., ::-1])
        records.append({"source": path, "faces": [face_record(f) for f in faces]})
    return records, failures


def predict_video(predictor, path, output, p):
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise InputError(f"{path}: cannot open the video (missing file or unsupported codec)")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    name, ext = os.path.splitext(os.path.basename(path))
    out_path = os.path.join(output, f"{name}_landmarks{'.mp4' if ext.lower() == '.mp4' else '.avi'}")
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if out_path.endswith(".mp4") else "MJPG"))
    tracker = FaceTracker(predictor, fps=fps, redetect_every=p.redetect_every,
                          min_confidence=p.min_confidence, smooth=p.smooth,
                          min_cutoff=p.min_cutoff, beta=p.beta)
    writer, records, index = None, [], 0
    with tqdm(total=frames, desc="video", unit="frame") as bar:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if writer is None:
                writer = cv2.VideoWriter(out_path, fourcc, fps,
                                         (bgr.shape[1], bgr.shape[0]))
            faces = tracker(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            if p.to_68:
                faces = [to_68(f) for f in faces]
            writer.write(draw(bgr, faces))
            records.append({"source": path, "frame": index, "faces": [face_record(f) for f in faces]})
            index += 1
            bar.update(1)
    cap.release()
    if writer is not None:
        writer.release()
    if index == 0:
        raise InputError(f"{path}: the video has no readable frames")
    return records, out_path


def run_predict(config, workdir: str) -> dict:
    p = config.predict
    if not p.input:
        raise InputError("give --config.predict.input=IMAGE, FOLDER or VIDEO")
    if not os.path.exists(p.input):
        raise FileNotFoundError(f"predict.input {p.input} does not exist")
    output = p.output or os.path.join(workdir, "predict")
    os.makedirs(output, exist_ok=True)
    predictor = make_predictor(config, workdir)
    failures = []
    if os.path.isdir(p.input):
        paths = sorted(os.path.join(p.input, f) for f in os.listdir(p.input)
                       if f.lower().endswith(IMAGE_EXTENSIONS))
        if not paths:
            raise InputError(f"{p.input}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
        records, failures = predict_images(predictor, paths, output, p.to_68)
    elif p.input.lower().endswith(VIDEO_EXTS):
        records, video = predict_video(predictor, p.input, output, p)
        print(f"wrote {video}")
    else:
        records, failures = predict_images(predictor, [p.input], output, p.to_68)
    write_outputs(output, records)
    found = sum(len(r.get("faces", [])) for r in records)
    print(f"{len(records)} {'frames' if p.input.lower().endswith(VIDEO_EXTS) else 'images'}, "
          f"{found} faces -> {output}/landmarks.json, landmarks.csv")
    if failures:
        print(f"{len(failures)} file(s) failed:\n  " + "\n  ".join(failures))
    return {"records": records, "failures": failures, "output": output}
