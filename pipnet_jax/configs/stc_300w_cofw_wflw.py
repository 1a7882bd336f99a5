"""STC as the original's data_300W_COFW_WFLW/..._wcc: labeled 300W (68 points, the GSSL 1.3
crop of spec 11.6), unlabeled COFW train (boxes grown 1.3, crop rule cofw_gssl) + WFLW train
(box shifted down, crop rule wflw_gssl) crops, 1345 + 7500 faces in that order (spec 11.6, 16),
6 x 60 epochs. Every round is evaluated on 300W full/common/challenge and, cross-domain, on
COFW-68 and WFLW-68 (spec 15).

Raw folders (every set is built on first use, then reused from data.data_dir):
--config.data.manual_dir=/data/300W             afw/ helen/ lfpw/ ibug/ with .pts
--config.stc.corpus.manual_dirs.cofw=/data/COFW COFW_train_color.mat, COFW_test_color.mat
--config.stc.corpus.manual_dirs.wflw=/data/WFLW WFLW_images/, WFLW_annotations/
                                                (list_98pt_rect_attr_train_test/, list_98pt_test/)
--config.evals.cofw68.manual_dir=/data/COFW68   COFW_test_color.mat, cofw68_test_bboxes.mat,
                                                cofw68_test_annotations/{1..507}_points.mat
--config.evals.wflw68.manual_dir=/data/WFLW     WFLW_images/, WFLW_annotations/
(The whole WFLW and COFW sets are built with the GSSL crop; only their train splits are used.)"""
from pipnet_jax.configs.common import stc_300w_config


def get_config(arg=None):
    c = stc_300w_config(arg)
    c.stc.corpus.sets = ("cofw:train:cofw_gssl", "wflw:train:wflw_gssl")
    return c
