"""Input pipeline throughput versus the training step, on this machine: which one is the limit?

    python -m pipnet_jax.bench.input_pipeline [--data_dir DIR] [--num_train 512] [--batch_size 16]

Builds the synthetic set (num_train faces; into DIR, reused on later runs, else a temporary
folder), then times `pipeline.train_batches` (read, JPEG decode, the original's augmentation,
batching; 256x256 uint8) with a private pool of 1 and of 2 threads, and the jitted train step
(`train.make_train_step`, PIPNet(98, 'resnet18') at 256, Adam 1e-4) on one in-memory random
batch of the same size, after compilation. All rates are images per second.
"""
import argparse
import contextlib
import os
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TensorFlow is first imported

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pipnet_jax.bench.timing import Column, format_table, time_calls
from pipnet_jax.data import builders
from pipnet_jax.data.pipeline import Source, train_batches
from pipnet_jax.meanface import compute_meanface, neighbor_indices
from pipnet_jax.models import PIPNet
from pipnet_jax.train import create_train_state, make_train_step

TABLE = [Column('stage', 'stage'), Column('threads', 'threads', align='>'),
         Column('images/s', 'images_per_s', '.1f')]


def pipeline_rate(data_dir, batch_size, threads, batches, warmup=2):
    """Augmented images/s of one host's pipeline with `threads` threads."""
    it = train_batches([Source('pipnet_synthetic', 'train', data_dir)], batch_size, seed=0,
                       process_index=0, process_count=1, threads=threads)
    # warm-up: the first shuffle-buffer fill and prefetch; the rate is over all timed batches
    times = time_calls(lambda: next(it), warmup=warmup, repeats=batches)
    return batches * batch_size / sum(times)


def train_step_rate(landmarks, batch_size, steps, warmup=1):
    """Images/s of the jitted train step on one random uint8 batch (device-resident)."""
    model = PIPNet(98, 'resnet18')
    variables = model.init(jax.random.key(0), jnp.zeros((1, 256, 256, 3)), train=False)
    tx = optax.adam(1e-4)
    carry = {'state': create_train_state(variables, tx)}
    step = jax.jit(make_train_step(model, tx, neighbor_indices(compute_meanface(landmarks), 10)))
    rng = np.random.default_rng(0)
    batch = {'image': jnp.asarray(rng.integers(0, 256, (batch_size, 256, 256, 3), dtype=np.uint8)),
             'landmarks': jnp.asarray(landmarks[rng.integers(0, len(landmarks), batch_size)])}

    def one_step():
        carry['state'], metrics = step(carry['state'], batch)
        return metrics

    times = time_calls(one_step, warmup=warmup, repeats=steps)  # warm-up: compilation
    return steps * batch_size / sum(times), jax.devices()[0]


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m pipnet_jax.bench.input_pipeline',
                                     description=__doc__.split('\n\n')[0])
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
        rows = [dict(stage='tf.data: read, decode, augment, batch', threads=str(t),
                     images_per_s=pipeline_rate(data_dir, args.batch_size, t, args.pipeline_batches))
                for t in (1, 2)]
    rate, device = train_step_rate(landmarks, args.batch_size, args.train_steps)
    rows.append(dict(stage=f'train step: PIPNet R18, Adam, jit ({device.platform})', threads='all',
                     images_per_s=rate))

    print(f'synthetic WFLW, {args.num_train} train faces, 256x256, batch {args.batch_size}, '
          f'{os.cpu_count()} CPUs')
    print(format_table(rows, TABLE))
    best_pipeline = max(r['images_per_s'] for r in rows[:2])
    if rate < best_pipeline:
        print(f'bottleneck: the train step; the pipeline delivers {best_pipeline / rate:.1f}x '
              f'what it consumes (one pipeline thread: {rows[0]["images_per_s"] / rate:.1f}x).')
    else:
        print(f'bottleneck: the input pipeline; the train step could take '
              f'{rate / best_pipeline:.1f}x more images/s: give tf.data more cores.')


if __name__ == '__main__':
    main()
