"""The parts of a GenDeF built from its settings, and the size budget checked before they are.

:func:`build_networks` makes (G_c, motion mapping, G_d) from a :class:`GenDeFConfig` and checks
nothing (the config is checked when it is made). :func:`check_model_budget` refuses settings whose
model would be over :data:`MAX_PARAMETERS` / :data:`MAX_ACTIVATION_BYTES`: parameters exactly (the
networks built once on PyTorch's ``meta`` device, which allocates nothing), activations estimated
from the StyleGAN channel schedule (one sample, one frame). The estimate is kept in
``config.size``, so a config checked at a training start is not built on meta again.
"""
from __future__ import annotations

from typing import Mapping, Optional, Tuple

import torch
import torch.nn as nn

from ..errors import ModelConfigError
from .config import DiscriminatorConfig, GenDeFConfig
from .networks.canonical import CanonicalGenerator
from .networks.deformation import DeformationGenerator
from .networks.discriminator import Discriminator
from .networks.motion_codes import build_motion
from .networks.stylegan3 import StyleGAN3Generator

__all__ = ["MAX_PARAMETERS", "MAX_ACTIVATION_BYTES", "build_networks", "estimate_model_size",
           "check_model_budget", "check_discriminator_config"]

# Stated limits (float32): weights of G alone at MAX_PARAMETERS are 1.2 GB; training keeps G, G_ema,
# D and two Adam moments, about 5x that.
MAX_PARAMETERS = 300_000_000
MAX_ACTIVATION_BYTES = 2 << 30  # forward activations of one sample, one frame (an estimate)
_ACTIVATION_FACTOR = 4  # modulated conv, noise, activation and skip tensors per conv output
_BACKBONES = {"stylegan2": CanonicalGenerator, "stylegan3": StyleGAN3Generator}


def build_networks(config: GenDeFConfig) -> Tuple[nn.Module, nn.Module, nn.Module]:
    """(G_c, motion mapping, G_d) of ``config``, in this order (the order draws their random init)."""
    canonical = _BACKBONES[config.canonical.backbone](config)
    motion = build_motion(config.motion)
    deformation = DeformationGenerator(config, motion.out_dim, canonical.feature_channels)
    return canonical, motion, deformation


def _activation_floats(res: int, cbase: int, cmax: int) -> int:
    """Conv outputs of one StyleGAN synthesis network (two convs per resolution 4..res)."""
    total, r = 0, 4
    while r <= res:
        total += 2 * max(1, min(cbase // r, cmax)) * r * r
        r *= 2
    return total


def estimate_model_size(config: GenDeFConfig) -> Tuple[int, int]:
    """(parameters, activation bytes of one sample and frame) of ``GenDeF(config)``, allocating nothing;
    computed once per config object (kept in ``config.size``)."""
    if config.size is None:
        with torch.device("meta"):
            params = sum(p.numel() for net in build_networks(config) for p in net.parameters())
        floats = _activation_floats(config.resolution, config.canonical.channel_base, config.canonical.channel_max)
        floats += _activation_floats(config.resolution, config.deformation.channel_base, config.deformation.channel_max)
        object.__setattr__(config, "size", (int(params), int(floats * _ACTIVATION_FACTOR * 4)))
    return config.size


def check_model_budget(config: GenDeFConfig, limits: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """Refuse settings whose model would exceed the stated limits; returns the estimate."""
    max_params, max_act = limits or (MAX_PARAMETERS, MAX_ACTIVATION_BYTES)
    params, act = estimate_model_size(config)
    if params > max_params:
        raise ModelConfigError(
            f"model config gives {params / 1e6:,.0f}M parameters ({params * 4 / 2**30:.1f} GiB), "
            f"over the limit of {max_params / 1e6:,.0f}M; lower channel_base/channel_max, z_dim/w_dim or resolution"
        )
    if act > max_act:
        raise ModelConfigError(
            f"model config needs about {act / 2**30:.1f} GiB of activations per frame, over the limit of "
            f"{max_act / 2**30:.1f} GiB; lower resolution or channel_base/channel_max"
        )
    return params, act


def check_discriminator_config(config: Mapping) -> DiscriminatorConfig:
    """The discriminator's settings from a flat dict (a ``disc:`` section plus the resolution) and its
    parameter count (one meta-device build), before anything is allocated."""
    cfg = DiscriminatorConfig.from_flat(config)
    with torch.device("meta"):
        params = sum(p.numel() for p in Discriminator(cfg).parameters())
    if params > MAX_PARAMETERS:
        raise ModelConfigError(
            f"disc config gives {params / 1e6:,.0f}M parameters, over the limit of {MAX_PARAMETERS / 1e6:,.0f}M; "
            "lower channel_base/channel_max"
        )
    return cfg
