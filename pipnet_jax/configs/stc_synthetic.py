"""Self-training with curriculum across a synthetic domain shift, sized for a CPU.

Labeled: 1,000 synthetic faces of style 'a'. Unlabeled corpus: 1,000 faces of style 'c' (the
same poses, but strong side light at low contrast, a muted palette, striped backgrounds, more
occluders and blur; their labels unused). Test: 200 style-'c' faces.

Every round trains 5 epochs of its own list, as the original (which trains 60 epochs per
round): a student, on labeled + pseudo-labeled faces, gets twice the teacher's steps. The
control run (stc.control) trains on the labeled faces only with a student's schedule, so the
pseudo-labels' effect is measured apart from the longer rounds.

Rounds: 'cls2', 'std', 'std' instead of the original's 'cls3', 'cls2', 'std' x3. At 128x128
input the stride-32 grid is 4x4, so its 2x2 'cls2' map is as coarse as the original's 'cls3'
at 256 (and 'cls3' would be 1x1, which carries no position); three rounds fit the CPU budget."""
from pipnet_jax.configs.common import stc_config
from pipnet_jax.configs.synthetic import get_config as synthetic_config


def get_config(arg=None):
    c = stc_config(synthetic_config(arg))
    c.data.synthetic_train = 1000
    c.data.synthetic_test = 100
    c.train.max_steps = 0
    c.train.num_epochs = 5
    c.train.decay_epochs = (3, 4)
    c.train.learning_rate = 1e-3
    c.train.checkpoint_every_steps = 100
    c.stc.tasks = ("cls2", "std", "std")
    c.stc.control = True
    # evaluated on style 'c' (the target domain); its train split is the unlabeled corpus
    c.evals.main = dict(dataset="synthetic", splits=("test",), synthetic_style="c",
                        synthetic_train=1000, synthetic_test=200)
    c.stc.corpus.from_eval = "main"
    c.stc.shard_size = 250
    return c
