"""STC as the original's data_300W_CELEBA/pip_32_16_60_r18_l2_l1_10_1_nb10_wcc: labeled 300W
(68 points, the GSSL 1.3 crop of spec 11.6), unlabeled CelebA (in-the-wild images + the
author's celeba_bboxes.txt, cropped with the GSSL rule), 6 x 60 epochs. Every round is
evaluated on 300W full/common/challenge and, cross-domain, on COFW-68 and WFLW-68 (spec 15).

Raw folders (the eval sets are built on first use, then reused from data.data_dir):
--config.data.manual_dir=/data/300W           afw/ helen/ lfpw/ ibug/ with .pts
--config.stc.corpus.images=/data/img_celeba --config.stc.corpus.boxes=/data/celeba_bboxes.txt
--config.evals.cofw68.manual_dir=/data/COFW68 COFW_test_color.mat, cofw68_test_bboxes.mat,
                                              cofw68_test_annotations/{1..507}_points.mat
--config.evals.wflw68.manual_dir=/data/WFLW   WFLW_images/, WFLW_annotations/"""
from pipnet_jax.configs.common import stc_300w_config


def get_config(arg=None):
    return stc_300w_config(arg)  # the corpus comes from the flags above
