"""GenDeF = G_c (canonical image) + G_d (deformation field) + bilinear warp.

Saved as config.json + model.safetensors through huggingface_hub's mixin, so a
local folder and a Hub repo id load the same way and no pickle is ever read.
"""
from __future__ import annotations

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
from .config import PAPER_RECIPE, RECIPE_DEFAULTS, GenDeFConfig
from .build import build_networks, check_model_budget
from ..settings import describe, flat_fields

__all__ = ["GenDeF", "GenDeFConfig", "RECIPE_DEFAULTS", "PAPER_RECIPE"]


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
    code u_t of the (continuous) time t and f_c into the sampling grid of frame t.

    ``GenDeF(config)`` takes a :class:`GenDeFConfig`; ``GenDeF(**settings)`` takes its flat keys
    (those of ``config.json``) and makes the config first. Either way every key is range-checked
    and the size estimated once, before any weight is allocated (``gendef.generator.config``).
    Channel counts of both generators follow StyleGAN: a layer at resolution r has
    ``min(channel_base // r, channel_max)`` channels. The keys (generated from GenDeFConfig):

    Args:
{ARGS}
    The defaults (``RECIPE_DEFAULTS``) are what a config.json without the key means, so the
    shipped ``checkpoints/default`` loads unchanged; ``PAPER_RECIPE`` lists the paper's values,
    which ``train/configs/*.yaml`` set.
    """

    def __init__(self, config: Optional[GenDeFConfig] = None, **settings):
        if config is None:
            config = GenDeFConfig.from_flat(settings)
        elif settings or not isinstance(config, GenDeFConfig):
            raise TypeError("GenDeF takes one GenDeFConfig or the flat config keys, not both")
        check_model_budget(config)  # one meta-device build per config object, before any weight
        super().__init__()
        self.config = config
        self._hub_mixin_config = config.to_flat()  # config.json stays the flat dict
        self.warp_padding = config.warp_padding
        self.warp_interpolation = config.warp_interpolation
        self.resolution = config.resolution
        self.z_dim = config.z_dim
        self.fps = float(config.fps)
        self.share_latent = config.share_latent
        self.field_reference_time = config.field_reference_time
        self.canonical, self.motion, self.deformation = build_networks(config)
        res = self.resolution
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, res), torch.linspace(-1, 1, res), indexing="ij")
        self.register_buffer("base_grid", torch.stack([xs, ys], dim=-1), persistent=False)  # m

    @classmethod
    def config_keys(cls) -> List[str]:
        """The keys a config.json may hold (GenDeFConfig's flat keys)."""
        return list(flat_fields(GenDeFConfig))

    @property
    def device(self) -> torch.device:
        return self.base_grid.device

    def make_latents(self, batch: int, num_frames: int, generator=None, device=None):
        """(z_c, z_d, motion_noise) drawn from one generator (training convenience); z_d is z_c
        when ``share_latent`` (the official code feeds one z to both mapping networks)."""
        device = device or self.device
        z_c = torch.randn(batch, self.z_dim, generator=generator).to(device)
        z_d = z_c if self.share_latent else torch.randn(batch, self.z_dim, generator=generator).to(device)
        noise = self.motion.make_noise(batch, self.noise_horizon(num_frames - 1), generator=generator, device=device)
        return z_c, z_d, noise

    def noise_horizon(self, last_time: float) -> float:
        """The last time the motion noise must cover: the clip's, or the field's reference time."""
        return max(float(last_time), float(self.field_reference_time or 0.0), 0.0)

    def warp(self, canonical: torch.Tensor, grid_norm: torch.Tensor) -> torch.Tensor:
        """x_t = T(x_c, m + dm_t): canonical [B,3,R,R] in [-1,1], grid [B,T,H,W,2] -> frames [B,T,3,H,W].

        Outside the canonical image counts as black (``warp_padding="black"``); ``"grey"`` samples
        0 in [-1, 1] there instead (official GenDeF), ``"border"`` the nearest edge pixel. A sampled
        CanonicalVideo carries the same ``padding`` and renders it with cv2.remap (a zero border,
        0.5, BORDER_REPLICATE), so training and rendering agree. ``warp_interpolation="bicubic"`` samples
        bicubically (a = -0.75, as cv2.INTER_CUBIC) and clamps to [-1, 1]; a sampled CanonicalVideo
        carries it as ``interpolation`` and renders with cv2.INTER_CUBIC clipped to [0, 1].
        """
        b, t, h, w, _ = grid_norm.shape
        black = self.warp_padding == "black"
        src = ((canonical + 1) * 0.5 if black else canonical).repeat_interleave(t, dim=0)
        out = F.grid_sample(src, grid_norm.reshape(b * t, h, w, 2).to(src.dtype), mode=self.warp_interpolation,
                            padding_mode="border" if self.warp_padding == "border" else "zeros", align_corners=True)
        out = out * 2 - 1 if black else out
        if self.warp_interpolation == "bicubic":
            out = out.clamp(-1.0, 1.0)
        return out.reshape(b, t, 3, h, w)

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
        if self.field_reference_time is not None:
            ref = times.new_full((times.shape[0], 1), float(self.field_reference_time))
            times = torch.cat([times, ref], dim=1)  # G_d's field at the reference time rides along as a last frame
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
        if self.field_reference_time is not None:
            delta = delta[:, :-1] - delta[:, -1:]  # relative to the reference time's field: motion only
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
        """Many videos in one batch. Frames are generated in chunks to bound memory (128+ frames).

        Each video's ``padding`` is the model's ``warp_padding`` and its ``interpolation`` the model's
        ``warp_interpolation``, so its frames are what the model's own warp shows.
        """
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
                [self.motion.make_noise(1, self.noise_horizon(last_t), generator=_generator(m, 2)) for m in motion_seeds]
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
                padding=self.warp_padding,
                interpolation=self.warp_interpolation,
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
        """Load a folder or Hub repo (config.json + model.safetensors) with a clear error on failure.

        config.json is read and checked once (keys, ranges, size) before any weight is allocated;
        keyword arguments other than the Hub's (``revision``, ``cache_dir``, ...) and
        ``map_location`` / ``strict`` override its keys."""
        name = str(pretrained_model_name_or_path)
        p = Path(name)
        load = {k: kwargs.pop(k) for k in _LOAD_KEYS if k in kwargs}
        if p.exists() and p.is_dir():
            missing = [f for f in ("config.json", "model.safetensors") if not (p / f).is_file()]
            if missing:
                raise CheckpointError(f"{name}: not a GenDeF checkpoint (missing {', '.join(missing)})")
            config = cls._read_config(p / "config.json", f"{name}/config.json", kwargs)
        elif not _looks_like_repo_id(name):
            raise CheckpointError(f"{name}: no such checkpoint folder (and not a Hub repo id like 'owner/name')")
        else:
            config = cls._read_config(_hub_config(name, load), f"{name}/config.json", kwargs)
        try:
            model = cls._from_pretrained(model_id=name, config=config, **load)
        except (CheckpointError, ModelConfigError):
            raise
        except Exception as e:  # safetensors/hub/network errors all become one clear message
            raise CheckpointError(f"{name}: cannot load checkpoint ({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        model.eval()
        return model

    @classmethod
    def _read_config(cls, path, label: str, overrides: dict) -> GenDeFConfig:
        """config.json (plus ``overrides``) read and checked in full (keys, ranges, size) before building."""
        try:
            flat = json.loads(Path(path).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{label} is not valid JSON ({e})") from None
        except OSError as e:
            raise CheckpointError(f"{label}: cannot read ({e.strerror or e})") from None
        try:
            return GenDeFConfig.from_flat({**flat, **overrides} if isinstance(flat, dict) else flat)
        except ModelConfigError as e:
            raise ModelConfigError(f"{label}: {e}") from None

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        config: GenDeFConfig,
        revision=None,
        cache_dir=None,
        force_download: bool = False,
        local_files_only: bool = False,
        token=None,
        map_location: str = "cpu",
        strict: bool = True,
    ):
        """safetensors only: the mixin's pickle fallback is deliberately not offered."""
        from safetensors.torch import load_model

        model = cls(config)
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


GenDeF.__doc__ = GenDeF.__doc__.replace("{ARGS}", describe(GenDeFConfig))
# from_pretrained's own keywords; any other keyword is a config key
_LOAD_KEYS = ("revision", "cache_dir", "force_download", "local_files_only", "token", "map_location", "strict")


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
