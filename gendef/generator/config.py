"""The GenDeF model settings: one typed definition per key, checked once before anything is built.

A ``config.json`` (or a YAML ``model:`` section) is plain data from outside; a typo or an absurd
value must be one clear line, never a 500 GB allocation or a silently ignored key. So:

1. :class:`GenDeFConfig` (with its :class:`CanonicalConfig`, :class:`DeformationConfig` and
   :class:`MotionConfig`) and :class:`DiscriminatorConfig` define every key once (meaning, unit,
   default, rule; ``gendef.settings``). Making an object checks every field; ``from_flat`` refuses
   unknown keys, listing the valid ones; ``to_flat`` is the flat dict ``config.json`` holds;
2. before a GenDeF is built from one, ``gendef.generator.build.check_model_budget`` estimates its
   size once (the networks built on PyTorch's ``meta`` device, which allocates nothing) and
   refuses settings over the stated limits.

The networks take these objects whole and never re-check them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

from ..errors import ModelConfigError
from ..video.padding import INTERPOLATIONS, PADDINGS
from ..settings import Rule, check_fields, check_flat, flat_defaults, from_flat, rules, setting, settings, to_flat

__all__ = [
    "GenDeFConfig", "CanonicalConfig", "DeformationConfig", "MotionConfig", "DiscriminatorConfig",
    "MODEL_SCHEMA", "DISCRIMINATOR_SCHEMA", "RECIPE_DEFAULTS", "PAPER_RECIPE", "DEFAULT_MTM_RESOLUTIONS",
    "validate_model_config",
]

# MTM where coarse geometry is decided; the paper does not list its layers.
DEFAULT_MTM_RESOLUTIONS = (8, 64)

_RES = Rule("int", 8, 2048, pow2=True)
_DIM = Rule("int", 1, 4096)
_CBASE = Rule("int", 1, 1 << 20)
_CMAX = Rule("int", 1, 4096)
_LAYERS = Rule("int", 1, 16)
_PERIOD = Rule("float", 1e-3, 1e7)
_FLAG = Rule("bool")
_RANGE = Rule("int_pair", 1, 2048, optional=True)
_BUDGET = "min(channel_base // r, channel_max) channels at resolution r (StyleGAN)"


@settings
class CanonicalConfig:
    """G_c, the canonical image generator (``GenDeF.canonical``)."""

    backbone: str = setting("stylegan2", "G_c's network: stylegan2 (small and fast) or stylegan3 (StyleGAN3-T, "
                            "alias-free: the paper's G_c)", Rule("choice", choices=("stylegan2", "stylegan3")),
                            key="canonical_backbone")
    channel_base: int = setting(8192, f"G_c's channel budget: {_BUDGET}", _CBASE, "channels x pixels")
    channel_max: int = setting(256, "G_c's largest channel count", _CMAX, "channels")
    mapping_layers: int = setting(4, "fully connected layers of G_c's mapping network z -> w", _LAYERS, "layers")
    feature_layer: Optional[int] = setting(
        None, "which G_c layer gives f_c: for StyleGAN3 L_k with k in 1..n (n = 2 log2(resolution) - 2), for "
        "StyleGAN2 the conv index; null = the penultimate layer, the paper's best choice (Table 3)",
        Rule("int", 1, 64, optional=True), "layer index", key="canonical_feature_layer")
    update_magnitude_ema: bool = setting(
        True, "update the StyleGAN3 G_c's input-magnitude EMA in training mode; false keeps it at 1, as the "
        "official training loop does (StyleGAN3 only)", _FLAG)
    mixed_precision: str = setting(
        "none", "the StyleGAN3 G_c layers of the mixed_precision_res highest sampling rates run in this dtype, "
        "clamped at 256 (float16: official, CUDA only)", Rule("choice", choices=("none", "float16", "bfloat16")))
    mixed_precision_res: int = setting(4, "how many of the highest sampling rates run reduced (official "
                                       "num_fp16_res)", Rule("int", 0, 16), "sampling rates")

    def __post_init__(self):
        check_fields(self)


@settings
class DeformationConfig:
    """G_d, the deformation field generator (``GenDeF.deformation``)."""

    channel_base: int = setting(4096, f"G_d's channel budget: {_BUDGET}", _CBASE, "channels x pixels",
                                key="deformation_channel_base")
    channel_max: int = setting(128, "G_d's largest channel count", _CMAX, "channels", key="deformation_channel_max")
    mapping_layers: int = setting(2, "layers of G_d's mapping network z_d -> w_d", _LAYERS, "layers",
                                  key="deformation_mapping_layers")
    feature_dim: int = setting(32, "channels f_c is projected to before it is concatenated to G_d's features at "
                               "every block", _DIM, "channels", key="canonical_feature_dim")
    use_canonical_feature: bool = setting(True, "feed f_c to G_d at all (false: the 'w/o f_c' ablation)", _FLAG)
    feature_resize: str = setting(
        "pool", "how f_c reaches each G_d layer's size: pool (1x1 projection, box-filter down-sizing) or bilinear "
        "(official: bilinear resize, no projection when f_c already has canonical_feature_dim channels)",
        Rule("choice", choices=("pool", "bilinear")), key="canonical_feature_resize")
    motion_input: str = setting(
        "style", "where u_t enters G_d: const (concatenated to its 4x4 input, the paper's) or style (appended to "
        "the style vector)", Rule("choice", choices=("style", "const")))
    init: str = setting(
        "zero", "G_d's last block (appendix A): zero (multiplier and adder zero-initialised, so a fresh G_d returns "
        "the canonical image), xavier, or none (no multiplier; Table A1's ablations)",
        Rule("choice", choices=("zero", "xavier", "none")), key="deformation_init")
    mtm_placement: str = setting(
        "all", "G_d's MTM layers: all (every conv in the MTM range, up-sampling ones included) or official "
        "(G_d's non-up-sampling convs and every ToOut but the last)", Rule("choice", choices=("all", "official")))
    mtm_resolutions: Optional[Tuple[int, int]] = setting(
        None, "[min, max] resolutions of G_d's MTM layers; null = mtm_resolutions (official: G_c [16, 32] by "
        "sampling rate, G_d [4, 64])", _RANGE, "pixels", key="deformation_mtm_resolutions")

    def __post_init__(self):
        check_fields(self)


@settings
class MotionConfig:
    """The motion codes u_t (``GenDeF.motion``): anchors of noise, mapped and encoded in time."""

    mapping: str = setting("mlp", "the motion mapping: stylegan_v (the paper's: conv1d over anchors + aligned "
                           "acyclic positional encoding) or mlp (the shipped 32 px model's variant)",
                           Rule("choice", choices=("mlp", "stylegan_v")), key="motion_mapping")
    kernel_size: int = setting(11, "kernel of the StyleGAN-V motion mapping's conv1d", Rule("int", 1, 63, odd=True),
                               "anchors", key="motion_kernel_size")
    noise_dim: int = setting(64, "size of the noise drawn at each motion anchor", _DIM, key="motion_noise_dim")
    code_dim: int = setting(64, "size of the motion code after the motion mapping", _DIM, key="motion_code_dim")
    anchor_spacing: float = setting(16.0, "distance between motion anchors; u_t interpolates the two anchors "
                                    "around t", Rule("float", 1e-3, 1e5), "frames", key="motion_anchor_spacing")
    num_freqs: int = setting(16, "sinusoids in the time encoding (official StyleGAN-V/GenDeF: 256)",
                             Rule("int", 1, 1024), key="time_num_freqs")
    min_period: float = setting(16.0, "shortest period of the time encoding (the paper: 16 for TaiChi, 256 for "
                                "SkyTimelapse)", _PERIOD, "frames", key="time_min_period")
    max_period: float = setting(1024.0, "longest period of the time encoding", _PERIOD, "frames",
                                key="time_max_period")

    def __post_init__(self):
        check_fields(self)
        if self.min_period > self.max_period:
            raise ModelConfigError(
                f"time_min_period ({self.min_period:g}) must not exceed time_max_period ({self.max_period:g})")


@settings
class GenDeFConfig:
    """Every setting of a GenDeF model; a ``config.json`` is its flat form (:meth:`to_flat`).

    Every field is checked when the object is made (from GenDeF's keywords, ``from_flat`` or
    directly); GenDeF estimates its size once before building, and the networks take it whole."""

    resolution: int = setting(64, "side of the square canonical image and of the frames", _RES, "pixels")
    z_dim: int = setting(128, "size of the latent z (canonical image; also z_d when share_latent)", _DIM)
    w_dim: int = setting(128, "size of the intermediate latent w that styles every layer of G_c and G_d", _DIM)
    fps: float = setting(16.0, "frame rate written into sampled videos (CanonicalVideo.fps); it does not change "
                         "the network", Rule("float", 1e-3, 1000), "frames per second")
    share_latent: bool = setting(False, "true: z_d = z (the official code feeds one z to both mapping networks); "
                                 "false: an independent z_d", _FLAG)
    warp_padding: str = setting("black", "what the warp samples outside the canonical image: black, grey (0 in "
                                "[-1, 1], official) or border (the nearest edge pixel: a drift brings in the edge's "
                                "colours, not a band); sampled videos carry it (CanonicalVideo.padding) and render "
                                "the same",
                                Rule("choice", choices=PADDINGS))
    warp_interpolation: str = setting("bilinear", "how the warp samples the canonical image: bilinear, or bicubic "
                                      "(a = -0.75, clamped to the colour range: a sub-pixel shift blurs less); sampled "
                                      "videos carry it (CanonicalVideo.interpolation) and render the same",
                                      Rule("choice", choices=INTERPOLATIONS))
    field_reference_time: Optional[float] = setting(
        None, "every frame's field minus G_d's field at this time, so the canonical image is the frame at that "
        "time and G_d's output is motion only (train/README 11); null = the paper's absolute field",
        Rule("float", 0, 1e6, optional=True), "frames")
    mtm: bool = setting(False, "put modulated transformation (deformable) layers in both generators (paper 4.1)",
                        _FLAG)
    mtm_resolutions: Optional[Tuple[int, int]] = setting(
        None, f"[min, max] resolutions of the layers that get MTM when mtm is on; null = {list(DEFAULT_MTM_RESOLUTIONS)}",
        _RANGE, "pixels")
    mtm_mask: bool = setting(False, "MTM also predicts a modulation mask per kernel tap (2 * sigmoid, 1 at init; "
                             "official); false: offsets only", _FLAG)
    canonical: CanonicalConfig = dataclasses.field(default_factory=CanonicalConfig)
    deformation: DeformationConfig = dataclasses.field(default_factory=DeformationConfig)
    motion: MotionConfig = dataclasses.field(default_factory=MotionConfig)
    # (parameters, activation bytes): filled once by gendef.generator.build.check_model_budget
    size: Optional[Tuple[int, int]] = dataclasses.field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self):
        check_fields(self)

    @classmethod
    def from_flat(cls, config: Mapping[str, Any]) -> "GenDeFConfig":
        return from_flat(cls, config, "model")

    def to_flat(self) -> Dict[str, Any]:
        return to_flat(self)

    @property
    def canonical_mtm_range(self) -> Optional[Tuple[int, int]]:
        """G_c's MTM resolutions (None: no MTM)."""
        return (self.mtm_resolutions or DEFAULT_MTM_RESOLUTIONS) if self.mtm else None

    @property
    def deformation_mtm_range(self) -> Optional[Tuple[int, int]]:
        """G_d's MTM resolutions (None: no MTM)."""
        return (self.deformation.mtm_resolutions or self.canonical_mtm_range) if self.mtm else None


@settings
class DiscriminatorConfig:
    """D, the StyleGAN2 ResNet discriminator with an image and a video mode (a ``disc:`` section)."""

    resolution: int = setting(64, "side of the frames D sees", _RES, "pixels")
    channel_base: int = setting(8192, f"D's channel budget: {_BUDGET}", _CBASE, "channels x pixels")
    channel_max: int = setting(256, "D's largest channel count", _CMAX, "channels")
    num_frames: int = setting(3, "frames per clip in video mode", Rule("int", 1, 64), "frames")
    merge_resolution: Optional[int] = setting(16, "where a clip's per-frame features are averaged (null = 16)",
                                              Rule("int", 1, 2048, optional=True), "pixels")
    tsm: bool = setting(True, "temporal shift (1/8 of the channels from the next frame, 1/8 from the previous) "
                        "in the blocks above merge_resolution", _FLAG)
    max_time_gap: int = setting(1024, "largest time difference the learnt table embeds", Rule("int", 1, 1 << 20),
                                "frames")
    time_embed_dim: int = setting(256, "size of the time-difference embedding", _DIM)
    time_mapping_layers: int = setting(2, "layers mapping the embedding to the projection vector", _LAYERS, "layers")
    mbstd_group: int = setting(4, "group size of the minibatch standard deviation", Rule("int", 1, 256), "samples")

    def __post_init__(self):
        check_fields(self)

    @classmethod
    def from_flat(cls, config: Mapping[str, Any]) -> "DiscriminatorConfig":
        return from_flat(cls, config, "disc")

    def to_flat(self) -> Dict[str, Any]:
        return to_flat(self)


MODEL_SCHEMA = rules(GenDeFConfig)
DISCRIMINATOR_SCHEMA = rules(DiscriminatorConfig)
_MODEL_DEFAULTS = flat_defaults(GenDeFConfig)
# The paper-recipe switches (issues 11, 22). RECIPE_DEFAULTS: what a config.json WITHOUT the key
# means -- the variant the shipped checkpoints/default was trained with, so it loads unchanged (the
# fields' defaults). PAPER_RECIPE: what the paper / official GenDeF code does; train/configs/*.yaml set it.
PAPER_RECIPE = {
    "motion_mapping": "stylegan_v",
    "motion_kernel_size": 11,
    "motion_input": "const",
    "share_latent": True,
    "deformation_init": "zero",
    "mtm_mask": True,
    "mtm_placement": "official",
    "canonical_feature_resize": "bilinear",
    "warp_padding": "grey",
    "update_magnitude_ema": False,
}
RECIPE_DEFAULTS = {k: _MODEL_DEFAULTS[k] for k in PAPER_RECIPE}


def validate_model_config(config: Mapping[str, Any]) -> Dict[str, Any]:
    """Keys and values of a flat model dict checked, without the size estimate (a stage-2 ``model:``
    section, whose networks come from ``init``); returns the given keys, normalised."""
    return check_flat(GenDeFConfig, config, "model")
