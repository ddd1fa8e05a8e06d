"""Inception-v3 pool features for FID (torchvision's architecture and state-dict names)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InceptionFeatures", "DEFAULT_INCEPTION_WEIGHTS"]

# torchvision's ImageNet weights; any state dict of torchvision's inception_v3 works.
DEFAULT_INCEPTION_WEIGHTS = "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"

_LAYERS = [
    "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
    "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
    "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
]


def build_inception_v3() -> nn.Module:
    from torchvision.models import inception_v3

    return inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)


class InceptionFeatures(nn.Module):
    """Images [N, 3, H, W] in [0, 1] -> 2048-d pool features, after resizing to ``size``
    (299 in the reference protocol; at least 75 for the architecture)."""

    dim = 2048

    def __init__(self, net: nn.Module = None, size: int = 299):
        super().__init__()
        if size < 75:
            raise ValueError("Inception-v3 needs inputs of at least 75x75")
        self.net = net if net is not None else build_inception_v3()
        self.size = int(size)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = x * 2.0 - 1.0  # what torchvision's transform_input produces for its ImageNet weights
        for name in _LAYERS:
            x = getattr(self.net, name)(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    @classmethod
    def from_weights(cls, source: str = DEFAULT_INCEPTION_WEIGHTS, size: int = 299) -> "InceptionFeatures":
        from .weights import load_state_dict_file, resolve_weights
        from ..errors import MetricsError

        sd = load_state_dict_file(resolve_weights(source, "inception_v3.safetensors"))
        net = build_inception_v3()
        try:
            net.load_state_dict(sd, strict=False) if not any(k.startswith("AuxLogits") for k in sd) else net.load_state_dict(sd)
        except RuntimeError as e:
            raise MetricsError(f"{source}: not torchvision inception_v3 weights ({str(e).splitlines()[0]})") from None
        missing = [k for k in net.state_dict() if k not in sd and not k.startswith(("AuxLogits", "fc."))]
        if missing:
            raise MetricsError(f"{source}: not torchvision inception_v3 weights (missing {missing[0]} ...)")
        return cls(net.eval(), size).eval()
