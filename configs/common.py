"""The original's recipe (spec 2.2, 8, 9) as a ConfigDict; dataset configs override fields."""
import ml_collections

BACKBONE_ALIASES = {"r18": "resnet18", "r50": "resnet50", "r101": "resnet101",
                    "mbv2": "mobilenet_v2", "mbv3": "mobilenet_v3"}


def base_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """`arg` picks the backbone: r18 (default), r50, r101, mbv2, mbv3 (e.g. configs/wflw.py:r101)."""
    backbone = BACKBONE_ALIASES.get(arg or "r18")
    if backbone is None:
        raise ValueError(f"config argument {arg!r}: expected one of {sorted(BACKBONE_ALIASES)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model = ml_collections.ConfigDict(dict(
        backbone=backbone, num_neighbors=10, net_stride=32, input_size=256))
    c.data = ml_collections.ConfigDict(dict(
        dataset="wflw",          # landmark set: point count, flip table, NME normalisation
        root="",                 # raw data folder (data issue)
        meanface_file="",        # the original's meanface.txt; empty: computed from training data
    ))
    c.train = ml_collections.ConfigDict(dict(
        batch_size=16, learning_rate=1e-4, num_epochs=60, decay_epochs=[30, 50],
        decay_factor=0.1, cls_loss="l2", reg_loss="l1", cls_loss_weight=10.0,
        reg_loss_weight=1.0, weight_decay=0.0))
    c.bench = ml_collections.ConfigDict(dict(batch_sizes=[1, 32], repeats=0))
    return c
