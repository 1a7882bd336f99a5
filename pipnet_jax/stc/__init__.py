"""Self-training with curriculum (spec 16): rounds (rounds.py), pseudo-labelling (labelling.py),
the corpus from the config (corpus_spec.py)."""
from pipnet_jax.stc.labelling import (host_directory, pass_folders, pseudo_label,  # noqa: F401
                                      pseudo_label_quality, pseudo_label_sources, teacher_id)
from pipnet_jax.stc.rounds import run_stc  # noqa: F401
