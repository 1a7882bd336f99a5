"""The PyTorch reference PIPNet, written by hand with torch.nn (no torchvision needed).

Parameter names equal the released checkpoints' (torchvision ResNet / MobileNetV2 layout,
d-li14 MobileNetV3 layout, heads cls_layer, x_layer, y_layer, nb_x_layer, nb_y_layer). Used
only by parity tests and benchmarks; NCHW throughout. One deliberate fix over the original:
the heads of every backbone take the extra layers' 512 channels at net_stride 64/128 (the
original declares 2048 for ResNet-50/101 and crashes).
"""
import numpy as np
import torch
import torch.nn.functional as F

from pipnet_jax.meanface import reverse_index
from torch import nn

RESNET_BLOCKS = {"resnet18": ("basic", [2, 2, 2, 2]), "resnet50": ("bottleneck", [3, 4, 6, 3]),
                 "resnet101": ("bottleneck", [3, 4, 23, 3])}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet v1.5: the stride sits on the 3x3 conv."""
    expansion = 4

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def build_resnet(owner, name):
    """torchvision ResNet without avgpool/fc: registers conv1, bn1, layer1..4 on `owner`."""
    kind, blocks = RESNET_BLOCKS[name]
    block = BasicBlock if kind == "basic" else Bottleneck
    owner.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    owner.bn1 = nn.BatchNorm2d(64)
    inplanes = 64
    for stage, (planes, n) in enumerate(zip([64, 128, 256, 512], blocks), start=1):
        layers = []
        for b in range(n):
            layers.append(block(inplanes, planes, 1 if stage == 1 or b > 0 else 2))
            inplanes = planes * block.expansion
        setattr(owner, f"layer{stage}", nn.Sequential(*layers))


def resnet_forward(owner, x):
    x = F.relu(owner.bn1(owner.conv1(x)))
    x = F.max_pool2d(x, 3, 2, 1)
    return owner.layer4(owner.layer3(owner.layer2(owner.layer1(x))))


def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn_act(cin, cout, k, s, groups=1, act=nn.ReLU6):
    """torchvision Conv2dNormActivation: keys .0 (conv) and .1 (bn)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act(inplace=True))


class MobileV2Block(nn.Module):
    def __init__(self, inp, oup, stride, t):
        super().__init__()
        hidden = int(round(inp * t))
        self.use_res = stride == 1 and inp == oup
        layers = [] if t == 1 else [_conv_bn_act(inp, hidden, 1, 1)]
        layers += [_conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


MOBILENET_V2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]  # t, c, n, s


def mobilenet_v2_features():
    layers, inp = [_conv_bn_act(3, 32, 3, 2)], 32
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            layers.append(MobileV2Block(inp, c, s if i == 0 else 1, t))
            inp = c
    layers.append(_conv_bn_act(inp, 1280, 1, 1))
    return nn.Sequential(*layers)


class HSigmoid(nn.Module):
    def __init__(self, inplace=True):
        super().__init__()

    def forward(self, x):
        return F.relu6(x + 3) / 6


class HSwish(nn.Module):
    def __init__(self, inplace=True):
        super().__init__()

    def forward(self, x):
        return x * F.relu6(x + 3) / 6


class SqueezeExcite(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(c, _make_divisible(c // 4, 8)), nn.ReLU(inplace=True),
                                nn.Linear(_make_divisible(c // 4, 8), c), HSigmoid())

    def forward(self, x):
        return x * self.fc(x.mean((2, 3)))[:, :, None, None]


class MobileV3Block(nn.Module):
    """d-li14 layout; SE sits before the activation in expanded blocks."""

    def __init__(self, inp, hidden, oup, k, stride, use_se, use_hs):
        super().__init__()
        self.use_res = stride == 1 and inp == oup
        act = HSwish if use_hs else nn.ReLU
        se = SqueezeExcite(hidden) if use_se else nn.Identity()
        dw = nn.Conv2d(hidden, hidden, k, stride, (k - 1) // 2, groups=hidden, bias=False)
        if inp == hidden:
            layers = [dw, nn.BatchNorm2d(hidden), act(inplace=True), se,
                      nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        else:
            layers = [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act(inplace=True),
                      dw, nn.BatchNorm2d(hidden), se, act(inplace=True),
                      nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


MOBILENET_V3_LARGE = [  # k, t, c, SE, HS, s  (spec 3.3)
    (3, 1, 16, 0, 0, 1), (3, 4, 24, 0, 0, 2), (3, 3, 24, 0, 0, 1), (5, 3, 40, 1, 0, 2),
    (5, 3, 40, 1, 0, 1), (5, 3, 40, 1, 0, 1), (3, 6, 80, 0, 1, 2), (3, 2.5, 80, 0, 1, 1),
    (3, 2.3, 80, 0, 1, 1), (3, 2.3, 80, 0, 1, 1), (3, 6, 112, 1, 1, 1), (3, 6, 112, 1, 1, 1),
    (5, 6, 160, 1, 1, 2), (5, 6, 160, 1, 1, 1), (5, 6, 160, 1, 1, 1)]


def mobilenet_v3_features():
    layers, inp = [_conv_bn_act(3, 16, 3, 2, act=HSwish)], 16
    for k, t, c, se, hs, s in MOBILENET_V3_LARGE:
        oup = _make_divisible(c, 8)
        hidden = _make_divisible(inp * t, 8)
        layers.append(MobileV3Block(inp, hidden, oup, k, s, se, hs))
        inp = oup
    return nn.Sequential(*layers), hidden


FEATURE_CHANNELS = {"resnet18": 512, "resnet50": 2048, "resnet101": 2048,
                    "mobilenet_v2": 1280, "mobilenet_v3": 960}


class PIPNetTorch(nn.Module):
    """Backbone + optional stride layers + the five 1x1 heads (raw outputs, no sigmoid)."""

    def __init__(self, num_landmarks, backbone="resnet18", num_neighbors=10, net_stride=32,
                 stc=False):
        super().__init__()
        if net_stride not in (32, 64, 128):
            raise ValueError(f"net_stride must be 32, 64 or 128, got {net_stride}")
        self.backbone, self.stc = backbone, stc
        if backbone in RESNET_BLOCKS:
            build_resnet(self, backbone)
        elif backbone == "mobilenet_v2":
            self.features = mobilenet_v2_features()
        elif backbone == "mobilenet_v3":
            self.features, last = mobilenet_v3_features()
            self.conv = _conv_bn_act(160, last, 1, 1, act=HSwish)
        else:
            raise ValueError(f"unknown backbone {backbone!r}; expected one of {list(FEATURE_CHANNELS)}")
        cf = FEATURE_CHANNELS[backbone]
        self.extra = []
        if net_stride >= 64:
            self.layer5 = nn.Conv2d(cf, 512, 3, 2, 1)
            self.bn5 = nn.BatchNorm2d(512)
            self.extra.append(("layer5", "bn5"))
            cf = 512
        if net_stride == 128:
            self.layer6 = nn.Conv2d(512, 512, 3, 2, 1)
            self.bn6 = nn.BatchNorm2d(512)
            self.extra.append(("layer6", "bn6"))
        n, c = num_landmarks, num_neighbors
        self.cls_layer = nn.Conv2d(cf, n, 1)
        self.x_layer = nn.Conv2d(cf, n, 1)
        self.y_layer = nn.Conv2d(cf, n, 1)
        self.nb_x_layer = nn.Conv2d(cf, c * n, 1)
        self.nb_y_layer = nn.Conv2d(cf, c * n, 1)
        for name in ["cls_layer", "x_layer", "y_layer", "nb_x_layer", "nb_y_layer"] + \
                [conv for conv, _ in self.extra]:
            nn.init.normal_(getattr(self, name).weight, std=0.001)
            nn.init.zeros_(getattr(self, name).bias)

    def features_forward(self, x):
        if self.backbone in RESNET_BLOCKS:
            x = resnet_forward(self, x)
        elif self.backbone == "mobilenet_v2":
            x = self.features(x)
        else:
            x = self.conv(self.features(x))
        for conv, bn in self.extra:
            x = F.relu(getattr(self, bn)(getattr(self, conv)(x)))
        return x

    def forward(self, x):
        f = self.features_forward(x)
        out = [self.cls_layer(f), self.x_layer(f), self.y_layer(f), self.nb_x_layer(f),
               self.nb_y_layer(f)]
        if self.stc:  # spec 3.4: coarser score maps through the same cls_layer
            f2 = F.max_pool2d(f, 2, 2)
            out += [self.cls_layer(f2), self.cls_layer(F.max_pool2d(f2, 2, 2))]
        return tuple(out)


def randomize_batchnorm(model, generator):
    """Random running statistics and affine parameters, so parity tests exercise them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=generator) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(c, generator=generator) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(c, generator=generator) * 0.1)
                m.num_batches_tracked.fill_(int(torch.randint(0, 1000, (1,), generator=generator)))


def reference_targets(landmarks, neighbors, height, width):
    """The original's gen_target (spec 7) for one sample, a float64 loop on the host as its data
    loader runs it, NCHW: score/off (N,H,W), nb (C*N,H,W)."""
    n, c = neighbors.shape
    score = np.zeros((n, height, width))
    off_x, off_y = np.zeros_like(score), np.zeros_like(score)
    nb_x, nb_y = np.zeros((c * n, height, width)), np.zeros((c * n, height, width))
    for i in range(n):
        x, y = float(landmarks[i, 0]), float(landmarks[i, 1])
        cx = min(max(int(np.floor(x * width)), 0), width - 1)
        cy = min(max(int(np.floor(y * height)), 0), height - 1)
        score[i, cy, cx] = 1
        off_x[i, cy, cx] = x * width - cx
        off_y[i, cy, cx] = y * height - cy
        for j in range(c):
            k = neighbors[i, j]
            nb_x[i * c + j, cy, cx] = landmarks[k, 0] * width - cx
            nb_y[i * c + j, cy, cx] = landmarks[k, 1] * height - cy
    return score, off_x, off_y, nb_x, nb_y


def reference_loss(outputs, targets, cls_weight=10.0, reg_weight=1.0):
    """The original compute_loss_pip (spec 8.1) with l2 score and l1 offset criteria.

    outputs, targets: tuples (score, offset_x, offset_y, neighbor_x, neighbor_y) in NCHW."""
    score, ox, oy, nbx, nby = outputs
    t_score, t_ox, t_oy, t_nbx, t_nby = targets
    b, n, h, w = score.shape
    c = nbx.shape[1] // n
    pos = t_score.view(b * n, -1).argmax(1).view(b * n, 1)
    pos_nb = pos.repeat(1, c).view(-1, 1)

    def gather(x, p, rows):
        return torch.gather(x.reshape(rows, -1), 1, p).squeeze(1)

    loss_map = F.mse_loss(score, t_score)
    loss_x = F.l1_loss(gather(ox, pos, b * n), gather(t_ox, pos, b * n))
    loss_y = F.l1_loss(gather(oy, pos, b * n), gather(t_oy, pos, b * n))
    loss_nbx = F.l1_loss(gather(nbx, pos_nb, b * n * c), gather(t_nbx, pos_nb, b * n * c))
    loss_nby = F.l1_loss(gather(nby, pos_nb, b * n * c), gather(t_nby, pos_nb, b * n * c))
    total = cls_weight * loss_map + reg_weight * (loss_x + loss_y + loss_nbx + loss_nby)
    return total, (loss_map, loss_x, loss_y, loss_nbx, loss_nby)


def reference_decoder(neighbors, net_stride: int, input_size: int):
    """Spec 12 batched with torch ops: NCHW outputs tuple -> (landmarks (B, N, 2), conf (B, N))."""
    neighbors = np.asarray(neighbors)
    n, c = neighbors.shape
    ri1, ri2, max_len = reverse_index(neighbors)
    vote_channels = torch.from_numpy((ri1.astype(np.int64) * c + ri2).reshape(n, max_len))
    scale = input_size / net_stride

    def at_cell(maps, cells):
        """Value of each channel at its cell: (B, K, H, W), (B, K) -> (B, K)."""
        return maps.reshape(*maps.shape[:2], -1).gather(2, cells[..., None])[..., 0]

    def decode(outputs):
        score, offset_x, offset_y, neighbor_x, neighbor_y = outputs[:5]
        w = score.shape[3]
        cell = score.reshape(*score.shape[:2], -1).argmax(2)  # (B, N), first max on ties
        confidence = at_cell(score, cell)
        col, row = (cell % w).to(score.dtype), (cell // w).to(score.dtype)
        x = (col + at_cell(offset_x, cell)) / scale
        y = (row + at_cell(offset_y, cell)) / scale
        # Channel i*C + j is landmark i's vote for its j-th neighbour, read at i's cell.
        owner_cell = cell.repeat_interleave(c, dim=1)
        vote_x = (col.repeat_interleave(c, dim=1) + at_cell(neighbor_x, owner_cell)) / scale
        vote_y = (row.repeat_interleave(c, dim=1) + at_cell(neighbor_y, owner_cell)) / scale
        idx = vote_channels.to(score.device)
        merged_x = torch.cat([x[..., None], vote_x[:, idx]], -1).mean(-1)
        merged_y = torch.cat([y[..., None], vote_y[:, idx]], -1).mean(-1)
        return torch.stack([merged_x, merged_y], -1), confidence

    return decode
