"""Input pipeline throughput versus the training step, on this machine: which one is the limit?

    python -m pipnet_jax.data.bench [--data_dir DIR] [--num_train 512] [--batch_size 16]

Builds the synthetic set (num_train faces; into DIR, reused on later runs, else a temporary
folder), then times `pipeline.train_batches` (read, JPEG decode, the original's augmentation,
batching; 256x256 uint8) with a private pool of 1 and of 2 threads, and the jitted train step
(`train.make_train_step`, PIPNet(98, 'resnet18') at 256, Adam 1e-4) on one in-memory random
batch of the same size, after compilation. All rates are images per second.
"""
import argparse
import contextlib
import itertools
import os
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np

from pipnet_jax.data import builders
from pipnet_jax.data.pipeline import Source, train_batches


def pipeline_rate(data_dir, batch_size, threads, batches, warmup=2):
    """Augmented images/s of one host's pipeline with `threads` threads."""
    it = train_batches([Source('pipnet_synthetic', 'train', data_dir)], batch_size, seed=0,
                       process_index=0, process_count=1, threads=threads)
    for _ in range(warmup):  # first shuffle-buffer fill and prefetch
        next(it)
    start = time.perf_counter()
    for _ in itertools.islice(it, batches):
        pass
    return batches * batch_size / (time.perf_counter() - start)


def train_step_rate(landmarks, batch_size, steps, warmup=1):
    """Images/s of the jitted train step on one random uint8 batch (device-resident)."""
    import jax
    import jax.numpy as jnp
    import optax

    from pipnet_jax.meanface import compute_meanface, neighbor_indices
    from pipnet_jax.models import PIPNet
    from pipnet_jax.train import create_train_state, make_train_step

    model = PIPNet(98, 'resnet18')
    variables = model.init(jax.random.key(0), jnp.zeros((1, 256, 256, 3)), train=False)
    tx = optax.adam(1e-4)
    state = create_train_state(variables, tx)
    step = jax.jit(make_train_step(model, tx, neighbor_indices(compute_meanface(landmarks), 10)))
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.integers(0, 256, (batch_size, 256, 256, 3), dtype=np.uint8))
    points = jnp.asarray(landmarks[rng.integers(0, len(landmarks), batch_size)])
    for _ in range(warmup):  # compilation
        state, metrics = step(state, images, points)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, images, points)
    jax.block_until_ready(metrics)
    return steps * batch_size / (time.perf_counter() - start), jax.devices()[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data_dir', help='synthetic TFDS set here (default: a temp folder)')
    parser.add_argument('--num_train', type=int, default=512)
    parser.add_argument('--batch_size', type=int, default=16)
    parser.add_argument('--pipeline_batches', type=int, default=96, help='timed batches')
    parser.add_argument('--train_steps', type=int, default=3, help='timed steps')
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        data_dir = args.data_dir or stack.enter_context(tempfile.TemporaryDirectory())
        builders.prepare_synthetic(data_dir, args.num_train, 8)
        landmarks = np.stack([ex['landmarks'] for ex in builders.load(
            'pipnet_synthetic', 'train', data_dir, decode=False).as_numpy_iterator()])
        rows = [('tf.data: read, decode, augment, batch', str(t),
                 pipeline_rate(data_dir, args.batch_size, t, args.pipeline_batches))
                for t in (1, 2)]
    rate, device = train_step_rate(landmarks, args.batch_size, args.train_steps)
    rows.append((f'train step: PIPNet R18, Adam, jit ({device.platform})', 'all', rate))

    print(f'synthetic WFLW, {args.num_train} train faces, 256x256, batch {args.batch_size}, '
          f'{os.cpu_count()} CPUs')
    print(f'| {"stage":<46} | threads | images/s |')
    print(f'|{"-" * 48}|---------|----------|')
    for name, threads, r in rows:
        print(f'| {name:<46} | {threads:>7} | {r:8.1f} |')
    best_pipeline = max(r for _, _, r in rows[:2])
    if rate < best_pipeline:
        print(f'bottleneck: the train step; the pipeline delivers {best_pipeline / rate:.1f}x '
              f'what it consumes (one pipeline thread: {rows[0][2] / rate:.1f}x).')
    else:
        print(f'bottleneck: the input pipeline; the train step could take '
              f'{rate / best_pipeline:.1f}x more images/s: give tf.data more cores.')


if __name__ == '__main__':
    main()
