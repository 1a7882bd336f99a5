"""STC as the original's data_300W_CELEBA/pip_32_16_60_r18_l2_l1_10_1_nb10_wcc: labeled 300W
(68 points), unlabeled CelebA (in-the-wild images + the author's celeba_bboxes.txt, cropped
with the GSSL rule of spec 11.6), 6 x 60 epochs.

--config.data.manual_dir=/data/300W --config.stc.corpus.images=/data/img_celeba
--config.stc.corpus.boxes=/data/celeba_bboxes.txt"""
from configs.common import base_config


def get_config(arg=None):
    c = base_config(arg)
    c.data.dataset = c.data.landmarks = "300w"
    c.data.eval_splits = ("full", "common", "challenge")
    return c
