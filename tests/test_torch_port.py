"""Checkpoint reading, the released-model registry and clear errors on bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from pipnet_jax.models import PIPNet
from pipnet_jax.bench.reference_torch import PIPNetTorch
from pipnet_jax.torch_port import (CheckpointMismatchError, from_torch_state_dict,
                                   identify_checkpoint, load_torch_checkpoint,
                                   released_checkpoints, save_torch_checkpoint,
                                   to_torch_state_dict)


def small_state(num_landmarks=19, backbone="resnet18"):
    torch.manual_seed(0)
    return PIPNetTorch(num_landmarks, backbone).state_dict()


def test_registry_matches_reference_table():
    rows = released_checkpoints()
    assert len(rows) == 12
    wflw = [r for r in rows if r.dataset == "wflw" and r.backbone == "resnet18"][0]
    assert wflw.bytes == 49393015 and wflw.num_landmarks == 98
    assert wflw.sha256 == "44002daaf3187e6e4b99e0fd9a52f60ffa05e06ec5df3721ace950fd2f2cc120"
    assert {r.dataset for r in rows} == {"wflw", "300w", "cofw", "aflw", "lapa", "300w_celeba", "300w_cofw_wflw"}


def test_save_load_round_trip_and_module_prefix(tmp_path):
    model = PIPNet(19)
    variables = from_torch_state_dict(small_state(), model)
    path = str(tmp_path / "epoch59.pth")
    save_torch_checkpoint(path, variables, model)
    state, released = load_torch_checkpoint(path)
    assert released is None  # a self-made file is no released model
    assert list(state) == list(small_state())
    # DataParallel-style 'module.' prefix is stripped
    torch.save({"module." + k: v for k, v in small_state().items()}, tmp_path / "dp.pth")
    state2, _ = load_torch_checkpoint(str(tmp_path / "dp.pth"))
    again = from_torch_state_dict(state2, model)
    np.testing.assert_array_equal(to_torch_state_dict(again, model)["cls_layer.weight"],
                                  small_state()["cls_layer.weight"].numpy())


def test_identify_released_file_by_hash(tmp_path, monkeypatch):
    """A file whose sha256 is in the registry is named; one of a released size but another
    hash is refused as corrupt."""
    path = tmp_path / "x.pth"
    path.write_bytes(b"not really a checkpoint")
    from pipnet_jax import torch_port
    real = torch_port.released_checkpoints()
    fake = real[0].__class__(**{**real[0].__dict__, "sha256": torch_port.file_sha256(str(path))})
    monkeypatch.setattr(torch_port, "released_checkpoints", lambda: [fake] + real[1:])
    assert identify_checkpoint(str(path)).dataset == "wflw"
    sized = tmp_path / "epoch59.pth"
    with open(sized, "wb") as f:
        f.truncate(real[6].bytes)  # AFLW R18's exact size, zeros
    with pytest.raises(ValueError, match="corrupt or modified"):
        identify_checkpoint(str(sized))


def test_missing_file_and_not_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_torch_checkpoint(str(tmp_path / "nowhere.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="junk.pth: not a readable PyTorch checkpoint"):
        load_torch_checkpoint(str(junk))


def test_wrong_landmark_count_names_the_problem():
    with pytest.raises(CheckpointMismatchError) as e:
        from_torch_state_dict(small_state(68), PIPNet(98))
    msg = str(e.value)
    assert "68 landmarks" in msg and "num_landmarks=98" in msg
    assert "wrongly shaped" in msg and "cls_layer.weight (68, 512, 1, 1)" in msg


def test_wrong_backbone_names_the_problem():
    with pytest.raises(CheckpointMismatchError) as e:
        from_torch_state_dict(small_state(19, "resnet50"), PIPNet(19, "resnet18"))
    msg = str(e.value)
    assert "looks like resnet50" in msg and "backbone='resnet18'" in msg
    assert "unexpected keys" in msg and "layer1.0.conv3.weight" in msg
    with pytest.raises(CheckpointMismatchError, match="missing keys"):
        state = small_state()
        del state["bn1.running_mean"]
        from_torch_state_dict(state, PIPNet(19))


def test_wrong_image_shape():
    model = PIPNet(19)
    variables = from_torch_state_dict(small_state(), model)
    with pytest.raises(ValueError, match=r"NHWC with 3 channels, got shape \(1, 3, 64, 64\)"):
        model.apply(variables, jnp.zeros((1, 3, 64, 64)))
    with pytest.raises(ValueError, match="multiples of net_stride 32, got 100x100"):
        model.apply(variables, jnp.zeros((1, 100, 100, 3)))
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        PIPNet(19, "vgg16").init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))


def test_imagenet_backbone_weights():
    """A torchvision-style classifier state dict (trunk + fc) initialises the backbone only."""
    torch.manual_seed(1)
    trunk = PIPNetTorch(19, "resnet18").state_dict()
    imagenet = {k: v for k, v in trunk.items() if not k.startswith(("cls_", "x_", "y_", "nb_"))}
    imagenet.update({"fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)})
    model = PIPNet(19)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
    from pipnet_jax.torch_port import load_backbone_weights
    loaded = to_torch_state_dict(load_backbone_weights(imagenet, model, variables), model)
    before = to_torch_state_dict(variables, model)
    for k, v in loaded.items():
        expected = trunk[k].numpy() if not k.startswith(("cls_", "x_", "y_", "nb_")) else before[k]
        np.testing.assert_array_equal(v, expected, err_msg=k)
    with pytest.raises(CheckpointMismatchError, match="do not fit the resnet18 backbone"):
        load_backbone_weights(small_state(19, "resnet50"), model, variables)
