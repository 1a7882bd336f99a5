"""A Dataset held in memory (no TensorFlow, no files), for one-step tests of the trainer and the
evaluators, as flax's examples test their train loop on fake data."""
import dataclasses

import numpy as np

from pipnet_jax.landmarks import LandmarkSet


@dataclasses.dataclass(frozen=True)
class InMemoryEvalSet:
    key: str
    images: np.ndarray
    landmarks: np.ndarray

    def batches(self, batch_size):
        for start in range(0, len(self.images), batch_size):
            image = self.images[start:start + batch_size]
            yield {"image": image, "landmarks": self.landmarks[start:start + batch_size],
                   "valid": np.ones(len(image), bool)}


class InMemoryDataset:
    """Random faces: uint8 images and landmarks in [0.1, 0.9]; what train.train reads."""

    def __init__(self, num_faces=8, num_points=5, size=64, num_neighbors=2, seed=0):
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, (num_faces, size, size, 3), dtype=np.uint8)
        self.landmarks = rng.uniform(0.1, 0.9, (num_faces, num_points, 2)).astype(np.float32)
        # a ring: everyone is somebody's neighbour (random points may leave one out)
        self.neighbors = np.stack([np.roll(np.arange(num_points), -k)[1:num_neighbors + 1]
                                   for k in range(num_points)])
        self.landmark_set = LandmarkSet("in_memory", num_points, tuple(range(num_points)),
                                        norm_indices=(0, 1), pupil_groups=((0,), (1,)))
        self.eval_sets = (InMemoryEvalSet("test", self.images[:4], self.landmarks[:4]),)

    def steps_per_epoch(self, per_host_batch):
        return len(self.images) // per_host_batch

    def train_batches(self, per_host_batch, start_step=0):
        step = start_step
        while True:
            k = step % self.steps_per_epoch(per_host_batch)
            rows = slice(k * per_host_batch, (k + 1) * per_host_batch)
            yield {"image": self.images[rows], "landmarks": self.landmarks[rows]}
            step += 1


@dataclasses.dataclass(frozen=True)
class PaddedEvalSet:
    """An eval set shaped as the tf.data pipeline gives it (pipeline.eval_batches): every batch
    has batch_size rows, the last one padded (valid=False, zeros, image_id ''); 'image_id' is
    there only when `image_ids` is given (a set without stored ids otherwise)."""
    key: str
    images: np.ndarray
    landmarks: np.ndarray
    image_ids: tuple = None

    def batches(self, batch_size):
        n = len(self.images)
        for start in range(0, n, batch_size):
            rows = np.arange(start, start + batch_size)
            valid = rows < n
            take = np.minimum(rows, n - 1)
            batch = {"image": np.where(valid[:, None, None, None], self.images[take], 0).astype(np.uint8),
                     "landmarks": np.where(valid[:, None, None], self.landmarks[take], 0).astype(np.float32),
                     "valid": valid}
            if self.image_ids is not None:
                batch["image_id"] = np.array([self.image_ids[r] if v else "" for r, v in zip(take, valid)])
            yield batch
