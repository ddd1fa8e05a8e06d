"""A compact Inception-I3D (Carreira & Zisserman 2017), the video detector behind FVD.

Module names follow the widely distributed PyTorch port's state dicts
(``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b0.bn.running_mean``, ``logits.conv3d.bias``)
so its Kinetics-400 weights load directly (``torch.load(weights_only=True)`` or
safetensors). FVD uses the 400 logits averaged over the clip.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InceptionI3d", "I3DFeatures"]


def _same_pad(size: int, k: int, s: int) -> tuple:
    total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
    return total // 2, total - total // 2


def _pad3d(x: torch.Tensor, k, s) -> torch.Tensor:
    (pt, pt2), (ph, ph2), (pw, pw2) = (_same_pad(x.shape[2 + i], k[i], s[i]) for i in range(3))
    return F.pad(x, (pw, pw2, ph, ph2, pt, pt2))


class Unit3D(nn.Module):
    """Conv3d with TensorFlow 'SAME' padding, optional BatchNorm and ReLU."""

    def __init__(self, cin, cout, k=(1, 1, 1), s=(1, 1, 1), bn=True, relu=True, bias=False):
        super().__init__()
        self.k, self.s = tuple(k), tuple(s)
        self.conv3d = nn.Conv3d(cin, cout, self.k, self.s, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01) if bn else None
        self.relu = relu

    def forward(self, x):
        x = self.conv3d(_pad3d(x, self.k, self.s))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    def __init__(self, k, s):
        super().__init__()
        self.k, self.s = tuple(k), tuple(s)

    def forward(self, x):
        return F.max_pool3d(_pad3d(x, self.k, self.s), self.k, self.s)


class InceptionBlock(nn.Module):
    """Four parallel branches (1x1; 1x1-3x3; 1x1-3x3; pool-1x1) concatenated."""

    def __init__(self, cin, c):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, c[5])
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


_MIXED = [
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
]


class InceptionI3d(nn.Module):
    """[N, 3, T, H, W] in [-1, 1] -> 400 class logits (or 1024-d pooled features)."""

    def __init__(self, num_classes: int = 400, in_channels: int = 3):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        order = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3"]
        c = 192
        for name, spec in _MIXED:
            if name.startswith("MaxPool"):
                setattr(self, name, MaxPool3dSame(*spec))
            else:
                blk = InceptionBlock(c, spec)
                setattr(self, name, blk)
                c = blk.out_channels
            order.append(name)
        self._order = order
        self.logits = Unit3D(c, num_classes, bn=False, relu=False, bias=True)
        self.feature_dim = c

    def forward(self, x: torch.Tensor, features: str = "logits") -> torch.Tensor:
        for name in self._order:
            x = getattr(self, name)(x)
        x = x.mean(dim=(2, 3, 4), keepdim=True)
        if features == "pool":
            return x.flatten(1)
        return self.logits(x).flatten(1)


class I3DFeatures(nn.Module):
    """Videos [N, T, 3, H, W] in [0, 1] -> FVD features; resizes frames to ``size`` (224 in
    the reference protocol; tests use small sizes with a randomly initialised network)."""

    def __init__(self, net: InceptionI3d = None, size: int = 224, features: str = "logits"):
        super().__init__()
        self.net = net if net is not None else InceptionI3d()
        self.size = int(size)
        self.features = features

    @property
    def dim(self) -> int:
        return self.net.logits.conv3d.out_channels if self.features == "logits" else self.net.feature_dim

    @torch.no_grad()
    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        n, t = videos.shape[:2]
        x = videos.reshape(n * t, *videos.shape[2:]).float()
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = x.reshape(n, t, 3, self.size, self.size).permute(0, 2, 1, 3, 4) * 2.0 - 1.0
        return self.net(x, self.features)

    @classmethod
    def from_weights(cls, source: str, size: int = 224, features: str = "logits") -> "I3DFeatures":
        from .weights import load_state_dict_file, resolve_weights
        from ..errors import MetricsError

        sd = load_state_dict_file(resolve_weights(source, "i3d.safetensors"))
        n_cls = sd["logits.conv3d.weight"].shape[0] if "logits.conv3d.weight" in sd else 400
        net = InceptionI3d(num_classes=n_cls)
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            msg = str(e).splitlines()[0]
            raise MetricsError(f"{source}: not InceptionI3d weights ({msg})") from None
        return cls(net.eval(), size, features).eval()
