"""From an experiment config to everything the training loop needs from data: the built TFDS
set (generated first for the synthetic set), the landmark set, the mean face and neighbor
table, and the train / eval batch iterators."""
import dataclasses
import os

import numpy as np

from pipnet_jax.data import builders, pipeline
from pipnet_jax.landmarks import LandmarkSet, get_landmark_set
from pipnet_jax.meanface import compute_meanface, neighbor_indices, read_meanface, write_meanface

# What each raw data set folder must contain, for the error when it is missing.
RAW_LAYOUT = {"wflw": "WFLW_images/ and WFLW_annotations/", "300w": "afw/ helen/ lfpw/ ibug/ with .pts",
              "cofw": "COFW_train_color.mat and COFW_test_color.mat", "aflw": "AFLWinfo_release.mat and images",
              "lapa": "train/ val/ test/ with images/ and landmarks/", "custom": "images and annotations"}


@dataclasses.dataclass
class ExperimentData:
    config: object
    name: str                       # built TFDS set, e.g. 'pipnet_wflw'
    data_dir: str
    landmark_set: LandmarkSet
    meanface: np.ndarray
    neighbors: np.ndarray
    eval_splits: list
    eval_name: str = ""             # evaluate on another built set (e.g. a target domain)
    eval_data_dir: str = ""

    @property
    def sources(self):
        return [pipeline.Source(self.name, self.config.data.train_split, self.data_dir)]

    def steps_per_epoch(self, per_host_batch: int, sources=None) -> int:
        return pipeline.steps_per_epoch(sources or self.sources, per_host_batch)

    def train_batches(self, per_host_batch: int, start_step: int = 0, sources=None):
        """Augmented batches of the labeled set, or of `sources` (e.g. labeled + pseudo-labeled
        for a curriculum round)."""
        c = self.config
        return pipeline.train_batches(
            sources or self.sources, per_host_batch, seed=c.seed, start_step=start_step,
            augment_config=c.augment.to_dict(), flip_permutation=self.landmark_set.flip_permutation,
            shuffle_buffer=c.data.shuffle_buffer, threads=c.data.threads or None)

    def eval_batches(self, split: str, batch_size: int):
        # every host evaluates the whole split (evaluation is small next to training)
        return pipeline.eval_batches(self.eval_name or self.name, split,
                                     self.eval_data_dir or self.data_dir, batch_size,
                                     process_index=0, process_count=1)


def prepare(config, workdir: str) -> ExperimentData:
    """Builds (or reuses) the data set and the mean face; writes <workdir>/meanface.txt."""
    d = config.data
    data_dir = d.data_dir or os.path.join(os.path.dirname(os.path.abspath(workdir)), "tfds")
    key = d.dataset.lower()
    if key == "synthetic":
        builders.prepare_synthetic(data_dir, d.synthetic_train, d.synthetic_test, seed=config.seed)
    else:
        if key not in RAW_LAYOUT:
            raise ValueError(f"data.dataset={d.dataset!r}: expected synthetic or one of {sorted(RAW_LAYOUT)}")
        try:
            builders.builder(f"pipnet_{key}", data_dir)  # already built: no raw files needed
        except FileNotFoundError:
            if not d.manual_dir or not os.path.isdir(d.manual_dir):
                raise FileNotFoundError(
                    f"data.manual_dir={d.manual_dir!r} is not a folder: give the raw {d.dataset} "
                    f"data set ({RAW_LAYOUT[key]}), e.g. --config.data.manual_dir=/data/{d.dataset}") from None
            builders.build(f"pipnet_{key}", data_dir, d.manual_dir, on_error=d.on_error)
    name = f"pipnet_{key}"
    landmark_set = get_landmark_set(d.landmarks)

    path = os.path.join(workdir, "meanface.txt")
    if d.meanface_file:
        meanface = read_meanface(d.meanface_file)
    elif os.path.exists(path):  # a resumed run keeps the mean face it started with
        meanface = read_meanface(path)
    else:
        landmarks = [ex["landmarks"] for ex in
                     builders.load(name, d.train_split, data_dir, decode=False).as_numpy_iterator()]
        meanface = compute_meanface(np.stack(landmarks).astype(np.float64))
    if meanface.shape != (landmark_set.num_points, 2):
        raise ValueError(f"mean face has {meanface.shape[0]} points; landmark set "
                         f"{landmark_set.name!r} has {landmark_set.num_points}")
    import jax
    if jax.process_index() == 0 and not os.path.exists(path):
        os.makedirs(workdir, exist_ok=True)
        write_meanface(path, meanface)
    return ExperimentData(config, name, data_dir, landmark_set, meanface,
                          neighbor_indices(meanface, config.model.num_neighbors), list(d.eval_splits))
