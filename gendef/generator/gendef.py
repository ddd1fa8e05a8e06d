"""GenDeF = G_c (canonical image) + G_d (deformation field) + bilinear warp.

Saved as config.json + model.safetensors through huggingface_hub's mixin, so a
local folder and a Hub repo id load the same way and no pickle is ever read.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin

from ..errors import CheckpointError, ModelConfigError
from ..video.canonical_video import CanonicalVideo
from ..video.grid import normalized_to_pixels
from .config import building_on_meta, check_model_budget, validate_model_config
from .networks.canonical import CanonicalGenerator
from .networks.deformation import DeformationGenerator
from .networks.motion_codes import build_motion
from .networks.mtm import check_mtm_resolutions
from .networks.stylegan3 import StyleGAN3Generator

__all__ = ["GenDeF", "RECIPE_DEFAULTS", "PAPER_RECIPE"]

_BACKBONES = {"stylegan2": CanonicalGenerator, "stylegan3": StyleGAN3Generator}
# MTM where coarse geometry is decided; the paper does not list its layers.
DEFAULT_MTM_RESOLUTIONS = (8, 64)

# The paper-recipe switches (issue 11), in one place so a config schema can validate them.
# RECIPE_DEFAULTS: what a config.json WITHOUT the key means -- the variant the shipped
# default checkpoint (checkpoints/default) was trained with, so it loads unchanged.
# PAPER_RECIPE: what the paper / official GenDeF code does; train/configs/*.yaml set these.
RECIPE_DEFAULTS = {
    "motion_mapping": "mlp",  # "stylegan_v": conv1d over anchors + aligned acyclic positional encoding
    "motion_kernel_size": 11,  # conv1d kernel of the StyleGAN-V motion mapping network
    "motion_input": "style",  # "const": u_t concatenated to G_d's 4x4 input (StyleGAN-V TemporalInput)
    "share_latent": False,  # True: z_d = z_c (official code: one z feeds both mapping networks)
    "deformation_init": "zero",  # Table A1: "zero" | "xavier" | "none" (w/o multiplier)
    # issue 22
    "mtm_mask": False,  # True: MTM also predicts a per-tap modulation mask 2*sigmoid (official)
    "mtm_placement": "all",  # "official": G_d MTM on non-upsampling convs + every ToOut but the last
    "canonical_feature_resize": "pool",  # "bilinear": official f_c resize (no projection if channels match)
    "warp_padding": "black",  # "grey": outside the canonical image samples 0 in [-1, 1] (official)
    "update_magnitude_ema": True,  # False: StyleGAN3 input-magnitude EMA never updated (official loop)
}
RECIPE_CHOICES = {
    "motion_mapping": ("mlp", "stylegan_v"),
    "motion_input": ("style", "const"),
    "share_latent": (False, True),
    "deformation_init": ("zero", "xavier", "none"),
    "mtm_mask": (False, True),
    "mtm_placement": ("all", "official"),
    "canonical_feature_resize": ("pool", "bilinear"),
    "warp_padding": ("black", "grey"),
    "update_magnitude_ema": (True, False),
}
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


def _check_recipe(values: dict) -> None:
    for key, choices in RECIPE_CHOICES.items():
        if values[key] not in choices:
            raise ValueError(f"{key} must be one of {list(choices)}, got {values[key]!r}")
    k = values["motion_kernel_size"]
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
        raise ValueError(f"motion_kernel_size must be a positive odd integer, got {k!r}")


def _generator(seed: int, stream: int) -> torch.Generator:
    """Independent, reproducible random streams for canonical and motion latents."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, stream]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


class GenDeF(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="gendef",
    tags=["video-generation", "gan", "gendef"],
):
    """GenDeF: a canonical image from G_c, warped by a per-frame deformation field from G_d.

    ``frame_t = warp(G_c(z), m + G_d(z_d, u_t, f_c))``: G_c draws the canonical image and
    exposes the feature f_c of one of its layers; G_d turns a global latent, the motion
    code u_t of the (continuous) time t and f_c into the sampling grid of frame t. Every
    argument is a key of ``config.json`` and is range-checked (``gendef.generator.config``)
    before any weight is allocated. Channel counts of both generators follow StyleGAN:
    a layer at resolution r has ``min(channel_base // r, channel_max)`` channels.

    Args:
        resolution: side of the square canonical image and of the frames, in pixels; a power
            of two, 8..2048. Default 64.
        z_dim: size of the latent z (canonical image; also z_d when ``share_latent``). Default 128.
        w_dim: size of the intermediate latent w that styles every layer of G_c and G_d. Default 128.
        channel_base: G_c's channel budget (see above). Default 8192.
        channel_max: G_c's largest channel count. Default 256.
        mapping_layers: fully connected layers of G_c's mapping network z -> w. Default 4.
        canonical_feature_layer: which G_c layer gives f_c: for StyleGAN3, L_k with k in 1..n
            (n = 2 log2(resolution) - 2); for StyleGAN2 the block index. ``None`` (default) = the
            penultimate layer, the paper's best choice (Table 3).
        canonical_feature_dim: channels f_c is projected to before it is concatenated to G_d's
            features at every block. Default 32.
        use_canonical_feature: feed f_c to G_d at all (``False`` is the "w/o f_c" ablation).
            Default True.
        deformation_channel_base: G_d's channel budget. Default 4096.
        deformation_channel_max: G_d's largest channel count. Default 128.
        deformation_mapping_layers: layers of G_d's mapping network z_d -> w_d. Default 2.
        motion_noise_dim: size of the noise drawn at each motion anchor. Default 64.
        motion_code_dim: size of the motion code u_t after the motion mapping. Default 64.
        motion_anchor_spacing: distance between motion anchors, in frames; u_t interpolates
            the two anchors around t. Default 16.
        time_num_freqs: sinusoids in the time encoding (official StyleGAN-V/GenDeF: 256). Default 16.
        time_min_period: shortest period of the time encoding, in frames (the paper: 16 for
            TaiChi, 256 for SkyTimelapse). Default 16.
        time_max_period: longest period of the time encoding, in frames. Default 1024.
        fps: frame rate written into sampled videos (``CanonicalVideo.fps``), frames per
            second; it does not change the network. Default 16.
        canonical_backbone: ``"stylegan2"`` (default; small and fast) or ``"stylegan3"``
            (StyleGAN3-T, alias-free: the paper's G_c).
        mtm: put modulated transformation (deformable) layers in both generators (paper §4.1).
            Default False.
        mtm_resolutions: ``[min, max]`` resolutions, in pixels, of the layers that get MTM when
            ``mtm`` is on; ``None`` = ``[8, 64]``.
        motion_mapping: ``"stylegan_v"`` (the paper's: conv1d over anchors + aligned acyclic
            positional encoding) or ``"mlp"`` (default; the shipped 32 px model's variant).
        motion_kernel_size: odd kernel of the StyleGAN-V motion mapping's conv1d, in anchors.
            Default 11.
        motion_input: where u_t enters G_d: ``"const"`` (concatenated to its 4x4 input, the
            paper's) or ``"style"`` (default; appended to the style vector).
        share_latent: ``True``: z_d = z (the official code feeds one z to both mapping
            networks); ``False`` (default): an independent z_d.
        deformation_init: G_d's last block (appendix A): ``"zero"`` (default: multiplier and
            adder zero-initialised, so a fresh G_d returns the canonical image), ``"xavier"``
            or ``"none"`` (no multiplier; Table A1's ablations).

        mtm_mask: MTM also predicts a modulation mask per kernel tap (2 * sigmoid, 1 at init;
            official). Default False (offsets only).
        mtm_placement: ``"all"`` (default: every G_d conv in the MTM range, up-sampling ones
            included) or ``"official"`` (G_d's non-up-sampling convs and every ToOut but the last).
        deformation_mtm_resolutions: ``[min, max]`` resolutions of G_d's MTM layers; ``None``
            (default) = ``mtm_resolutions`` (official: G_c [16, 32] by sampling rate, G_d [4, 64]).
        canonical_feature_resize: how f_c reaches each G_d layer's size: ``"pool"`` (default: 1x1
            projection, box-filter down-sizing) or ``"bilinear"`` (official: bilinear resize, no
            projection when f_c already has ``canonical_feature_dim`` channels).
        warp_padding: what the warp samples outside the canonical image: ``"black"`` (default,
            as ``cv2.remap`` renders a CanonicalVideo) or ``"grey"`` (0 in [-1, 1], official).
        update_magnitude_ema: update the StyleGAN3 G_c's input-magnitude EMA in training mode
            (default True); ``False`` keeps it at 1, as the official training loop does. It and
            the two mixed-precision keys only act on a StyleGAN3 G_c.
        mixed_precision: ``"none"`` (default), ``"float16"`` (official; CUDA only) or
            ``"bfloat16"``: the StyleGAN3 G_c layers of the ``mixed_precision_res`` highest
            sampling rates run in that dtype, clamped at 256.
        mixed_precision_res: how many of the highest sampling rates run reduced (official
            ``num_fp16_res``). Default 4.

    The defaults (``RECIPE_DEFAULTS``) are what a config.json without the key means, so the
    shipped ``checkpoints/default`` loads unchanged; ``PAPER_RECIPE`` lists the paper's values,
    which ``train/configs/*.yaml`` set.
    """

    def __init__(
        self,
        resolution: int = 64,
        z_dim: int = 128,
        w_dim: int = 128,
        channel_base: int = 8192,
        channel_max: int = 256,
        mapping_layers: int = 4,
        canonical_feature_layer: Optional[int] = None,
        canonical_feature_dim: int = 32,
        use_canonical_feature: bool = True,
        deformation_channel_base: int = 4096,
        deformation_channel_max: int = 128,
        deformation_mapping_layers: int = 2,
        motion_noise_dim: int = 64,
        motion_code_dim: int = 64,
        motion_anchor_spacing: float = 16.0,
        time_num_freqs: int = 16,
        time_min_period: float = 16.0,
        time_max_period: float = 1024.0,
        fps: float = 16.0,
        canonical_backbone: str = "stylegan2",
        mtm: bool = False,
        mtm_resolutions: Optional[Sequence[int]] = None,
        motion_mapping: str = RECIPE_DEFAULTS["motion_mapping"],
        motion_kernel_size: int = RECIPE_DEFAULTS["motion_kernel_size"],
        motion_input: str = RECIPE_DEFAULTS["motion_input"],
        share_latent: bool = RECIPE_DEFAULTS["share_latent"],
        deformation_init: str = RECIPE_DEFAULTS["deformation_init"],
        mtm_mask: bool = RECIPE_DEFAULTS["mtm_mask"],
        mtm_placement: str = RECIPE_DEFAULTS["mtm_placement"],
        deformation_mtm_resolutions: Optional[Sequence[int]] = None,
        canonical_feature_resize: str = RECIPE_DEFAULTS["canonical_feature_resize"],
        warp_padding: str = RECIPE_DEFAULTS["warp_padding"],
        update_magnitude_ema: bool = RECIPE_DEFAULTS["update_magnitude_ema"],
        mixed_precision: str = "none",
        mixed_precision_res: int = 4,
    ):
        self.check_config({k: v for k, v in locals().items() if k not in ("self", "__class__")})
        super().__init__()
        _check_recipe(dict(motion_mapping=motion_mapping, motion_kernel_size=motion_kernel_size,
                           motion_input=motion_input, share_latent=share_latent, deformation_init=deformation_init,
                           mtm_mask=mtm_mask, mtm_placement=mtm_placement, canonical_feature_resize=canonical_feature_resize,
                           warp_padding=warp_padding, update_magnitude_ema=update_magnitude_ema))
        if canonical_backbone not in _BACKBONES:
            raise ValueError(f"canonical_backbone must be one of {sorted(_BACKBONES)}, got {canonical_backbone!r}")
        mtm_range = check_mtm_resolutions(mtm_resolutions or DEFAULT_MTM_RESOLUTIONS) if mtm else None
        deform_mtm_range = check_mtm_resolutions(deformation_mtm_resolutions) if mtm and deformation_mtm_resolutions else mtm_range
        sg3 = dict(update_magnitude_ema=update_magnitude_ema, mixed_precision=mixed_precision,
                   mixed_precision_res=mixed_precision_res) if canonical_backbone == "stylegan3" else {}
        self.warp_padding = warp_padding
        self.resolution = int(resolution)
        self.z_dim = int(z_dim)
        self.fps = float(fps)
        self.share_latent = bool(share_latent)
        self.canonical = _BACKBONES[canonical_backbone](
            resolution=resolution,
            z_dim=z_dim,
            w_dim=w_dim,
            channel_base=channel_base,
            channel_max=channel_max,
            mapping_layers=mapping_layers,
            feature_layer=canonical_feature_layer,
            mtm_resolutions=mtm_range,
            mtm_mask=mtm_mask,
            **sg3,
        )
        self.motion = build_motion(
            motion_mapping,
            kernel_size=motion_kernel_size,
            noise_dim=motion_noise_dim,
            code_dim=motion_code_dim,
            anchor_spacing=motion_anchor_spacing,
            num_freqs=time_num_freqs,
            min_period=time_min_period,
            max_period=time_max_period,
        )
        self.deformation = DeformationGenerator(
            resolution=resolution,
            z_dim=z_dim,
            w_dim=w_dim,
            motion_dim=self.motion.out_dim,
            canonical_channels=self.canonical.feature_channels,
            canonical_feature_dim=canonical_feature_dim,
            channel_base=deformation_channel_base,
            channel_max=deformation_channel_max,
            mapping_layers=deformation_mapping_layers,
            use_canonical_feature=use_canonical_feature,
            mtm_resolutions=deform_mtm_range,
            motion_input=motion_input,
            init=deformation_init,
            mtm_mask=mtm_mask,
            mtm_placement=mtm_placement,
            feature_resize=canonical_feature_resize,
        )
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, resolution), torch.linspace(-1, 1, resolution), indexing="ij")
        self.register_buffer("base_grid", torch.stack([xs, ys], dim=-1), persistent=False)  # m

    @classmethod
    def config_keys(cls) -> List[str]:
        """The keys a config.json may hold (the constructor's arguments)."""
        return [k for k in inspect.signature(cls.__init__).parameters if k != "self"]

    @classmethod
    def check_config(cls, config: dict) -> dict:
        """Schema (range for every key, unknown keys refused) and size estimate, before any
        weight is allocated; raises a one-line ModelConfigError (see gendef/generator/config.py)."""
        cfg = validate_model_config(config, valid_keys=cls.config_keys())
        if not building_on_meta():
            check_model_budget(cls, cfg)
        return cfg

    # ------------------------------------------------------------------ forward pass
    @property
    def device(self) -> torch.device:
        return self.base_grid.device

    def make_latents(self, batch: int, num_frames: int, generator=None, device=None):
        """(z_c, z_d, motion_noise) drawn from one generator (training convenience); z_d is z_c
        when ``share_latent`` (the official code feeds one z to both mapping networks)."""
        device = device or self.device
        z_c = torch.randn(batch, self.z_dim, generator=generator).to(device)
        z_d = z_c if self.share_latent else torch.randn(batch, self.z_dim, generator=generator).to(device)
        noise = self.motion.make_noise(batch, max(num_frames - 1, 0), generator=generator, device=device)
        return z_c, z_d, noise

    def warp(self, canonical: torch.Tensor, grid_norm: torch.Tensor) -> torch.Tensor:
        """x_t = T(x_c, m + dm_t): canonical [B,3,R,R] in [-1,1], grid [B,T,H,W,2] -> frames [B,T,3,H,W].

        Outside the canonical image counts as black, exactly as ``cv2.remap`` with
        a zero border renders a CanonicalVideo, so training and rendering agree;
        ``warp_padding="grey"`` samples 0 in [-1, 1] there instead (official GenDeF).
        """
        b, t, h, w, _ = grid_norm.shape
        if self.warp_padding == "grey":
            src = canonical.repeat_interleave(t, dim=0)
            out = F.grid_sample(src, grid_norm.reshape(b * t, h, w, 2).to(src.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)
            return out.reshape(b, t, 3, h, w)
        src = ((canonical + 1) * 0.5).repeat_interleave(t, dim=0)
        out = F.grid_sample(src, grid_norm.reshape(b * t, h, w, 2).to(src.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)
        return (out * 2 - 1).reshape(b, t, 3, h, w)

    def generate(
        self,
        z_c: torch.Tensor,
        z_d: torch.Tensor,
        motion_noise: torch.Tensor,
        times: torch.Tensor,
        truncation_psi: float = 1.0,
        noise_mode: str = "random",
        canonical=None,
    ) -> dict:
        """One pass of the whole generator.

        Returns canonical [B,3,R,R], grid_norm [B,T,R,R,2] (m + dm_t in [-1,1]),
        grid_px (same in canonical pixels), frames [B,T,3,R,R] (all in [-1,1]).
        ``canonical`` = (image, feature) reuses an already computed G_c output.
        With ``share_latent`` the z_d argument is ignored and z_c drives G_d too.
        """
        if times.ndim == 1:
            times = times[None].expand(z_c.shape[0], -1)
        if self.share_latent:
            z_d = z_c
        img, feat = canonical if canonical is not None else self.canonical(z_c, truncation_psi, noise_mode)
        u = self.motion(motion_noise, times)
        if self.checkpoint_deformation and self.training and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint  # training memory: recompute G_d + warp in the backward

            grid, frames = checkpoint(self._deform, z_d, u, feat, img, truncation_psi, use_reentrant=False)
        else:
            grid, frames = self._deform(z_d, u, feat, img, truncation_psi)
        return {
            "canonical": img,
            "feature": feat,
            "grid_norm": grid,
            "grid_px": normalized_to_pixels(grid, (self.resolution, self.resolution)),
            "frames": frames,
        }

    forward = generate

    # Set by the trainer (train config key ``checkpoint_deformation``), not saved with the model.
    checkpoint_deformation = False

    def _deform(self, z_d, u, feat, img, truncation_psi: float):
        """Per-frame G_d and warp: the sampling grid [B,T,R,R,2] and the frames [B,T,3,R,R]."""
        delta = self.deformation(z_d, u, feat, truncation_psi)  # [B,T,2,R,R]
        grid = self.base_grid.to(delta.dtype) + delta.permute(0, 1, 3, 4, 2)
        return grid, self.warp(img, grid)

    # ------------------------------------------------------------------ sampling API
    @torch.no_grad()
    def sample_batch(
        self,
        seeds: Sequence[int],
        num_frames: int = 16,
        truncation_psi: float = 1.0,
        motion_seeds: Optional[Sequence[Optional[int]]] = None,
        fps: Optional[float] = None,
        frame_chunk: int = 16,
        start_time: float = 0.0,
        progress=None,
    ) -> List[CanonicalVideo]:
        """Many videos in one batch. Frames are generated in chunks to bound memory (128+ frames)."""
        seeds = [int(s) for s in seeds]
        if not seeds:
            return []
        if num_frames < 1:
            raise ValueError("num_frames must be >= 1")
        motion_seeds = list(motion_seeds) if motion_seeds is not None else [None] * len(seeds)
        if len(motion_seeds) != len(seeds):
            raise ValueError("motion_seeds must match seeds in length")
        motion_seeds = [s if m is None else int(m) for s, m in zip(seeds, motion_seeds)]
        dev = self.device
        was_training = self.training
        self.eval()
        try:
            z_c = torch.cat([torch.randn(1, self.z_dim, generator=_generator(s, 0)) for s in seeds]).to(dev)
            z_d = torch.cat([torch.randn(1, self.z_dim, generator=_generator(m, 1)) for m in motion_seeds]).to(dev)
            last_t = start_time + num_frames - 1
            noise = torch.cat(
                [self.motion.make_noise(1, last_t, generator=_generator(m, 2)) for m in motion_seeds]
            ).to(dev)
            canon = self.canonical(z_c, truncation_psi, "const")
            grids = []
            times_all = torch.arange(num_frames, dtype=torch.float32) + float(start_time)
            for i, s in enumerate(range(0, num_frames, frame_chunk)):
                times = times_all[s : s + frame_chunk].to(dev)
                out = self.generate(z_c, z_d, noise, times, truncation_psi, "const", canonical=canon)
                grids.append(out["grid_px"].float().cpu())
                if progress is not None:
                    progress(min(1.0, (s + len(times)) / num_frames), "sampling frames")
            grid = torch.cat(grids, dim=1).numpy()
            images = ((canon[0].float().clamp(-1, 1) + 1) * 0.5).permute(0, 2, 3, 1).cpu().numpy()
        finally:
            self.train(was_training)
        fps = float(fps or self.fps)
        return [
            CanonicalVideo(
                canonical=images[i],
                grid=grid[i],
                fps=fps,
                metadata={"source": "gendef", "seed": seeds[i], "motion_seed": motion_seeds[i], "truncation_psi": truncation_psi},
            )
            for i in range(len(seeds))
        ]

    def sample(
        self,
        seed: int = 0,
        num_frames: int = 16,
        truncation_psi: float = 1.0,
        motion_seed: Optional[int] = None,
        fps: Optional[float] = None,
        progress=None,
    ) -> CanonicalVideo:
        """One video. Same seeds -> identical result; a new motion_seed keeps the canonical image."""
        return self.sample_batch([seed], num_frames, truncation_psi, [motion_seed], fps, progress=progress)[0]

    # ------------------------------------------------------------------ persistence
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "GenDeF":
        """Load a folder or Hub repo (config.json + model.safetensors) with a clear error on failure."""
        name = str(pretrained_model_name_or_path)
        p = Path(name)
        if p.exists() and p.is_dir():
            missing = [f for f in ("config.json", "model.safetensors") if not (p / f).is_file()]
            if missing:
                raise CheckpointError(f"{name}: not a GenDeF checkpoint (missing {', '.join(missing)})")
            cls._check_config_file(p / "config.json", f"{name}/config.json")
        elif not _looks_like_repo_id(name):
            raise CheckpointError(f"{name}: no such checkpoint folder (and not a Hub repo id like 'owner/name')")
        else:
            cls._check_config_file(_hub_config(name, kwargs), f"{name}/config.json")
        try:
            kwargs.setdefault("strict", True)
            model = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except (CheckpointError, ModelConfigError):
            raise
        except TypeError as e:
            raise CheckpointError(f"{name}: config.json does not match this GenDeF version ({e})") from None
        except Exception as e:  # safetensors/hub/network errors all become one clear message
            raise CheckpointError(f"{name}: cannot load checkpoint ({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        model.eval()
        return model

    @classmethod
    def _check_config_file(cls, path, label: str) -> dict:
        """config.json read and checked in full (schema, unknown keys, size) before building."""
        try:
            config = json.loads(Path(path).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{label} is not valid JSON ({e})") from None
        except OSError as e:
            raise CheckpointError(f"{label}: cannot read ({e.strerror or e})") from None
        try:
            return cls.check_config(config)
        except ModelConfigError as e:
            raise ModelConfigError(f"{label}: {e}") from None

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision=None,
        cache_dir=None,
        force_download: bool = False,
        local_files_only: bool = False,
        token=None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs,
    ):
        """safetensors only: the mixin's pickle fallback is deliberately not offered."""
        from safetensors.torch import load_model

        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            model_file = os.path.join(model_id, "model.safetensors")
        else:
            from huggingface_hub import hf_hub_download

            model_file = hf_hub_download(
                repo_id=model_id,
                filename="model.safetensors",
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )
        _check_weight_shapes(model, model_file, model_id)
        missing, unexpected = load_model(model, model_file, strict=False, device=str(map_location))
        if strict and (missing or unexpected):
            raise CheckpointError(
                f"{model_id}: weights do not match the config (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        return model

    @torch.no_grad()
    def refresh_w_avg(self, num_samples: int = 8192, seed: int = 0) -> None:
        """Set both mapping networks' w_avg to the mean w over many z (what truncation pulls towards).

        Exact and cheap, so exports need not rely on a running average kept during training.
        """
        gen = torch.Generator().manual_seed(seed)
        for mapping in (self.canonical.mapping, self.deformation.mapping):
            ws = []
            for s in range(0, num_samples, 1024):
                z = torch.randn(min(1024, num_samples - s), self.z_dim, generator=gen).to(self.device)
                ws.append(mapping(z).float().sum(0))
            mapping.w_avg.copy_(torch.stack(ws).sum(0) / num_samples)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _hub_config(repo_id: str, kwargs: dict) -> str:
    """Local path of a Hub repo's config.json (cached; the mixin reads the same file)."""
    from huggingface_hub import hf_hub_download

    keys = ("revision", "cache_dir", "force_download", "token", "local_files_only")
    try:
        return hf_hub_download(repo_id=repo_id, filename="config.json", **{k: kwargs[k] for k in keys if k in kwargs})
    except Exception as e:  # network, auth, missing repo: one line
        raise CheckpointError(f"{repo_id}: cannot load checkpoint config.json ({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def _check_weight_shapes(model: nn.Module, model_file: str, model_id: str) -> None:
    """Compare every tensor's shape in the safetensors header with the model's, reading no weights."""
    from safetensors import safe_open

    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    try:
        with safe_open(model_file, framework="pt") as f:
            stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # SafetensorError on a truncated/corrupt header
        raise CheckpointError(f"{model_id}: cannot load checkpoint: corrupt model.safetensors ({e.__class__.__name__}: {e})") from None
    for key, shape in stored.items():
        if key in expected and expected[key] != shape:
            raise CheckpointError(
                f"{model_id}: weight {key} has shape {list(shape)} in the checkpoint but {list(expected[key])} "
                "in the model built from config.json (config and weights do not match)"
            )


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/"))
