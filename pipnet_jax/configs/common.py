"""The original's recipe (spec 2.2, 8, 9) as a ConfigDict; dataset configs override fields.

Every knob is a field, overridable on the command line: --config.train.batch_size=64.
Sections: seed, model, data, augment, train, eval (how), evals (what is evaluated), predict.
STC settings exist only in STC configs (`stc_config`)."""
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
        backbone=backbone, num_neighbors=10, net_stride=32, input_size=256,
        # torchvision ImageNet state dict (.pth) for the backbone, as the original starts;
        # empty: random init (the original then uses weight_decay 5e-4)
        pretrained_file=""))
    c.data = ml_collections.ConfigDict(dict(
        dataset="wflw",          # TFDS builder: wflw, 300w, cofw, aflw, lapa, custom, synthetic
        landmarks="wflw",        # landmark set: point count, flip table, NME normalisation
        manual_dir="",           # the raw data set (images + annotation files)
        crop="",                 # crop rule (annotations.CROP_RULES), e.g. 300w_gssl (the STC 1.3
                                 # box); empty: the data set's own. Built as pipnet_<set>/<crop>
        data_dir="",             # where TFDS sets are built; empty: <workdir>/../tfds
        train_split="train",
        meanface_file="",        # the original's meanface.txt; empty: mean of the training set
        on_error="raise",        # bad annotation lines / images: 'raise' or 'skip' (counted)
        shuffle_buffer=4096,
        threads=0,               # tf.data threads per host; 0: automatic
        synthetic_train=0, synthetic_test=0,   # faces to generate (synthetic set only)
    ))
    c.augment = ml_collections.ConfigDict(dict(
        translate_prob=0.5, translate_max_px=30, occlusion_prob=0.5, occlusion_max_frac=0.4,
        flip_prob=0.5, rotate_prob=0.5, rotate_max_deg=30.0, blur_prob=0.3,
        blur_max_radius=5.0, gray_prob=0.2,
        order=("translate", "occlusion", "flip", "rotate", "blur", "gray")))
    c.train = ml_collections.ConfigDict(dict(
        batch_size=16, learning_rate=1e-4, num_epochs=60, decay_epochs=(30, 50),
        decay_factor=0.1, cls_loss="l2", reg_loss="l1", cls_loss_weight=10.0,
        reg_loss_weight=1.0, weight_decay=0.0,
        max_steps=0,             # >0: stop after this many steps (short runs, tests)
        compute_dtype="float32",  # or bfloat16 (params stay float32)
        log_every_steps=50, checkpoint_every_steps=1000, keep_checkpoints=3,
        eval_every_steps=0))     # >0: also evaluate every N steps (and at 0 and the end) into eval_curve.csv
    c.eval = ml_collections.ConfigDict(dict(
        batch_size=32,
        torch_checkpoint="",     # --mode=eval: a released/other PyTorch .pth instead of the workdir
        output="",               # --mode=eval: where results go; empty: the workdir (a read-only
                                 # workdir can be evaluated into another folder)
        num_pictures=16))
    # What is evaluated, one entry per set (big_vision's config.evals). 'main' is the training
    # data set (dataset ''), its splits keyed plainly in results.json ('test'); any other entry
    # is keyed '<entry>/<split>' ('cofw68/test'). An entry's dataset: '' (the training set), a
    # raw data set of the same landmark set built on first use from its manual_dir (e.g.
    # cofw68, wflw68), or 'synthetic' with synthetic_style / _train / _test (a generated set).
    # The first split of the first entry is the main result (pictures, STC summary).
    c.evals = ml_collections.ConfigDict(dict(main=dict(dataset="", splits=("test",))))
    c.predict = ml_collections.ConfigDict(dict(
        input="",                # an image, a folder of images, a video, or a camera index (0)
        output="",               # folder for overlays + landmarks.json/.csv; empty: <workdir>/predict
        torch_checkpoint="",     # a PyTorch .pth instead of the workdir's checkpoint
        torch_dataset="wflw",    # its landmark set / mean face (a released file is recognised)
        detector="faceboxes",    # faceboxes (FaceBoxesV2, the original's) or haar (weak, no download)
        faceboxes_weights="",    # FaceBoxesV2.pth; empty: $PIPNET_FACEBOXES_WEIGHTS or the cache
        score_threshold=0.6,     # detector score (the original demo: 0.6 images, 0.9 video)
        batch_size=8,            # faces per network call; a folder runs this many images at once
        backend="auto",          # forward + decode: auto (ONNX Runtime on a CPU when installed), xla, onnxruntime
        to_68=False,             # WFLW 98 points -> 68 (300W scheme)
        pts=False,               # also write <name>.pts (iBUG format; <name>_<k>.pts per face)
        max_frames=0,            # video / camera: stop after this many frames (0: at the end)
        redetect_every=30, min_confidence=0.2,   # video: tracking
        smooth=True, min_cutoff=1.0, beta=0.05))  # video: One Euro filter
    # --mode=label: pseudo-label a corpus with the workdir's model (as one STC pass, resumable)
    c.label = ml_collections.ConfigDict(dict(
        corpus=corpus_config(c),
        output="",               # shards + manifest; empty: <workdir>/labels
        task="std",              # the task recorded with each label (losses.TASKS)
        shard_size=256, batch_size=32,
        relabel=False,           # True: replace labels made by another model
        min_confidence=0.0))     # >0: skip faces with a lower mean confidence
    # --mode=export: the workdir's model as a deployable file (export.py; formats: jax,
    # saved_model, tflite, onnx)
    c.export = ml_collections.ConfigDict(dict(
        format="jax", out="",    # empty out: <workdir>/export/pipnet.<ext>
        batch_size=0,            # 0: any batch (symbolic), else fixed
        platforms="cpu",         # jax / saved_model: e.g. "cpu,cuda"
        onnx_layout="end_to_end",   # onnx: uint8 in, landmarks out; or compat (the raw heads)
        onnx_opset=17))
    return c


def corpus_config(c, **extra) -> ml_collections.ConfigDict:
    """An unlabeled corpus: an image folder of crops (images), a folder of whole images whose
    most confident face is detected (images + detect: faceboxes or haar), a box list (CelebA
    style: boxes + images), or a built TFDS set (tfds, split, data_dir); empty fields are
    ignored. The detector's settings are predict's fields (setting either sets both)."""
    return ml_collections.ConfigDict(dict(
        images="", boxes="", tfds="", split="train", data_dir="", detect="",
        faceboxes_weights=c.predict.get_ref("faceboxes_weights"),
        score_threshold=c.predict.get_ref("score_threshold"), **extra))


def stc_config(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Adds the STC settings (spec 16) to an experiment config."""
    c.stc = ml_collections.ConfigDict(dict(
        tasks=("cls3", "cls2", "std", "std", "std"),   # rounds after the teacher (spec 16)
        # the unlabeled corpus (corpus_config), or raw sets "dataset:split[:crop rule]" (e.g.
        # "cofw:train:cofw_gssl") concatenated in order, built on first use into data.data_dir
        # from manual_dirs.<dataset>, or from_eval: a config.evals entry whose set's `split` is
        # the corpus (its labels only score the pseudo-labels)
        corpus=corpus_config(c, from_eval="", sets=(),
                             manual_dirs=ml_collections.ConfigDict(dict(cofw="", wflw=""))),
        shard_size=256, label_batch_size=32,
        relabel=False,           # True: replace pseudo-labels made by another teacher
        min_confidence=0.0,      # >0: skip pseudo-labels with a lower mean confidence (off: original)
        labeled_weight=0.0, pseudo_weight=0.0,   # both >0: sample by weight (off: concatenation)
        warm_start=False,        # True: students start from the teacher (off: fresh, original)
        control=False,           # True: also train on the labeled set only, with the last
                                 # student's schedule (a baseline for the pseudo-labels' effect)
        schedule="epochs",       # a student's length: 'epochs' (train.num_epochs of its own list,
                                 # the original) or 'steps' (the teacher's steps and decays)
        ))
    return c


def stc_300w_config(arg=None):
    """The labeled side of the original's two GSSL experiments (spec 11.6, 15, 16): 300W with
    the 1.3 crop, evaluated on 300W full/common/challenge and, cross-domain, on COFW-68 and
    WFLW-68 (68 points, norm 36/45). The configs add their corpus."""
    c = stc_config(base_config(arg))
    c.data.dataset = c.data.landmarks = "300w"
    c.data.crop = "300w_gssl"
    c.evals.main.splits = ("full", "common", "challenge")
    c.evals.cofw68 = dict(dataset="cofw68", splits=("test",), manual_dir="")
    c.evals.wflw68 = dict(dataset="wflw68", splits=("test",), manual_dir="")
    return c
