"""Forward/decode parity with the PyTorch reference on real face crops, per backbone."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from pipnet_jax.decode import decode_landmarks
from pipnet_jax.images import normalize_images
from pipnet_jax.meanface import neighbor_indices, read_meanface
from pipnet_jax.models import PIPNet
from pipnet_jax.bench.reference_torch import PIPNetTorch, randomize_batchnorm, reference_decoder
from pipnet_jax.torch_port import from_torch_state_dict, to_torch_state_dict

OUTPUTS = ("score", "offset_x", "offset_y", "neighbor_x", "neighbor_y")


def torch_reference(backbone, net_stride=32, stc=False, num_landmarks=98, seed=0):
    torch.manual_seed(seed)
    net = PIPNetTorch(num_landmarks, backbone, net_stride=net_stride, stc=stc)
    randomize_batchnorm(net, torch.Generator().manual_seed(seed + 1))
    return net.eval()


CASES = [("resnet18", 256), ("resnet50", 128), ("resnet101", 128), ("mobilenet_v2", 128),
         ("mobilenet_v3", 128)]


@pytest.mark.parametrize("backbone,size", CASES)
def test_forward_and_decode_parity(backbone, size, wflw_crops, shared_data):
    crops = wflw_crops[0][:4]
    if size != 256:
        import cv2
        crops = np.stack([cv2.resize(c, (size, size)) for c in crops])
    net = torch_reference(backbone)
    model = PIPNet(98, backbone)
    variables = from_torch_state_dict(net.state_dict(), model)

    images = np.asarray(normalize_images(crops))
    with torch.no_grad():
        ref = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    out = jax.jit(lambda v, x: model.apply(v, x))(variables, jnp.asarray(images))
    for name, r in zip(OUTPUTS, ref):
        r = r.numpy().transpose(0, 2, 3, 1)
        got = np.asarray(getattr(out, name))
        assert got.shape == r.shape, name
        rel = np.abs(got - r).max() / np.abs(r).max()
        assert rel < 1e-4, f"{backbone} {name}: max error {rel:.2e} of max magnitude"

    neighbors = neighbor_indices(read_meanface(shared_data / "pipnet_repo_assets/data/WFLW/meanface.txt"), 10)
    ours, _ = decode_landmarks(out, neighbors, net_stride=32, input_size=size)
    theirs, _ = reference_decoder(neighbors, 32, size)(ref)
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), atol=1e-5)

    back = to_torch_state_dict(variables, model)
    sd = net.state_dict()
    assert list(back) == list(sd)
    for k, v in sd.items():
        assert back[k].shape == tuple(v.shape) and back[k].dtype == v.numpy().dtype, k
        np.testing.assert_array_equal(back[k], v.numpy(), err_msg=k)


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3"])
@pytest.mark.parametrize("net_stride", [64, 128])
def test_extra_stride_layers_every_backbone(backbone, net_stride):
    """Stride 64/128 work for every backbone (the original breaks them for ResNet-50/101)."""
    net = torch_reference(backbone, net_stride=net_stride, num_landmarks=19)
    model = PIPNet(19, backbone, net_stride=net_stride)
    variables = from_torch_state_dict(net.state_dict(), model)
    x = np.random.RandomState(0).randn(1, 256, 256, 3).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    out = model.apply(variables, jnp.asarray(x))
    side = 256 // net_stride
    assert out.score.shape == (1, side, side, 19) and out.neighbor_x.shape == (1, side, side, 190)
    for name, r in zip(OUTPUTS, ref):
        r = r.numpy().transpose(0, 2, 3, 1)
        assert np.abs(np.asarray(getattr(out, name)) - r).max() / np.abs(r).max() < 1e-4, name


def test_stc_score_maps_share_cls_layer(wflw_crops):
    net = torch_reference("resnet18", stc=True)
    model = PIPNet(98, "resnet18", stc=True)
    variables = from_torch_state_dict(net.state_dict(), model)
    assert to_torch_state_dict(variables, model).keys() == torch_reference("resnet18").state_dict().keys()
    images = np.asarray(normalize_images(wflw_crops[0][:2]))
    with torch.no_grad():
        ref = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    out = model.apply(variables, jnp.asarray(images))
    assert out.score_cls2.shape == (2, 4, 4, 98) and out.score_cls3.shape == (2, 2, 2, 98)
    for got, r in ((out.score_cls2, ref[5]), (out.score_cls3, ref[6])):
        r = r.numpy().transpose(0, 2, 3, 1)
        assert np.abs(np.asarray(got) - r).max() / np.abs(r).max() < 1e-4
