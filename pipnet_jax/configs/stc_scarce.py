"""STC in the paper's regime, sized for a CPU: scarce labels, a corpus ten times larger, rounds
trained to a plateau, against fair baselines, over two seeds (`--mode=stc_study`).

Labeled: 300 synthetic style-'a' faces (the original's 300W has 3,148; 300 keeps the labels
scarce enough that a corpus can add what they lack). Unlabeled corpus: 3,000 style-'c' faces
(1:10, between the original's 1:2.8 and 1:64; their labels only score the pseudo-labels).
Test: 200 style-'c' faces (a 1-point NME difference is then ~2 standard errors of a mean).

Every run trains 30 epochs of the 300 labeled faces (18 steps each: 540 steps, decays at 20
and 25), evaluated every 90 steps: the curve flattens before the end (study.md shows its last
points). stc.schedule='steps': a student gets the teacher's 540 steps and decays (equal
compute), so the teacher is also the labeled-only control of equal steps. The original's
equal-epoch schedule would give a student 11x the teacher's steps (206 per epoch), ~95 min
per round on a 2-core CPU; it is left to a GPU run (configs/stc_300w_celeba.py).

Arms: curriculum ('cls2', 'std': at 128x128 the 4x4 grid's 2x2 'cls2' map is as coarse as
the original's 'cls3' at 256) on seeds 0 and 1 (a seed draws its own faces and init);
'std', 'std' (the original's `_wocc`) from the same teacher on seed 0; and the same 'std'
rounds with every batch half labeled, half pseudo-labeled (stc.labeled_weight = pseudo_weight
= 1) on seed 0: at equal steps plain concatenation leaves the labeled faces 1/11 of a batch."""
import ml_collections

from pipnet_jax.configs.common import stc_config
from pipnet_jax.configs.synthetic import get_config as synthetic_config


def get_config(arg=None):
    c = stc_config(synthetic_config(arg))
    c.data.synthetic_train = 300
    c.data.synthetic_test = 50      # style 'a' faces, not evaluated (the target domain is)
    c.train.max_steps = 0
    c.train.num_epochs = 30
    c.train.decay_epochs = (20, 25)
    c.train.learning_rate = 1e-3
    c.train.checkpoint_every_steps = 180
    c.train.log_every_steps = 30
    c.train.eval_every_steps = 90
    c.stc.tasks = ("cls2", "std")
    c.stc.schedule = "steps"
    c.evals.main = dict(dataset="synthetic", splits=("test",), synthetic_style="c",
                        synthetic_train=3000, synthetic_test=200)
    c.stc.corpus.from_eval = "main"
    c.stc.shard_size = 500
    c.study = ml_collections.ConfigDict(dict(seeds=(0, 1), ablation_tasks=("std", "std"),
                                             ablation_seeds=(0,), weighted_seeds=(0,),
                                             weights=(1.0, 1.0)))
    return c
