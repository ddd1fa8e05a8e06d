"""Procedural sky time-lapses: a small, offline stand-in for SkyTimelapse.

The default checkpoint must be trained on this machine with no network, so we
synthesise the data: a sky gradient, fBm clouds on a plane seen in perspective
(drifting with the wind, morphing and gently swirling), static horizon
silhouettes and a slow change of light. Every clip is a pure function of its
seed, and time is absolute (a 16-frame clip is the prefix of the 32-frame one),
so datasets are reproducible and clips of any length agree.

    python -m gendef.data.synthetic data/sky64 --videos 2000 --frames 32 --resolution 64
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from ..errors import DatasetError
from ..imageutil import to_uint8
from ..threads import opencv_threads

__all__ = ["render_clip", "horizon_mask", "write_dataset", "clip_seed", "PALETTES", "main"]

MAX_RESOLUTION = 1024
MIN_RESOLUTION = 8
_PERIOD = 4.0  # cloud texture period, in screen widths (seen at the top row)
_SUPERSAMPLE = 4  # anti-aliasing of the static silhouettes

# Colours are sRGB in [0, 1]. "glow" is the sun's halo (0 strength: no visible sun).
PALETTES = {
    "day": dict(zenith=(0.13, 0.33, 0.72), horizon=(0.62, 0.78, 0.93), lit=(1.0, 1.0, 1.0),
                shadow=(0.52, 0.58, 0.68), ground=(0.06, 0.08, 0.07), glow=(1.0, 0.98, 0.9), glow_strength=0.15,
                coverage=(0.15, 0.55), weight=0.4),
    "sunset": dict(zenith=(0.22, 0.27, 0.52), horizon=(1.0, 0.58, 0.28), lit=(1.0, 0.72, 0.5),
                   shadow=(0.42, 0.28, 0.38), ground=(0.07, 0.04, 0.05), glow=(1.0, 0.75, 0.4), glow_strength=0.6,
                   coverage=(0.15, 0.55), weight=0.16),
    "pink": dict(zenith=(0.3, 0.33, 0.62), horizon=(0.98, 0.62, 0.62), lit=(1.0, 0.78, 0.78),
                 shadow=(0.45, 0.38, 0.55), ground=(0.06, 0.05, 0.08), glow=(1.0, 0.8, 0.7), glow_strength=0.35,
                 coverage=(0.2, 0.6), weight=0.08),
    "overcast": dict(zenith=(0.56, 0.59, 0.64), horizon=(0.76, 0.78, 0.8), lit=(0.9, 0.91, 0.92),
                     shadow=(0.42, 0.44, 0.48), ground=(0.1, 0.11, 0.11), glow=(1.0, 1.0, 1.0), glow_strength=0.0,
                     coverage=(0.7, 0.95), softness=(0.8, 1.6), scale=(0.4, 1.0), absorb=(0.2, 0.5), weight=0.14),
    "dusk": dict(zenith=(0.04, 0.07, 0.2), horizon=(0.5, 0.38, 0.5), lit=(0.5, 0.42, 0.52),
                 shadow=(0.13, 0.12, 0.2), ground=(0.02, 0.02, 0.04), glow=(0.9, 0.5, 0.35), glow_strength=0.25,
                 coverage=(0.15, 0.5), weight=0.1),
    "storm": dict(zenith=(0.25, 0.28, 0.33), horizon=(0.55, 0.58, 0.6), lit=(0.68, 0.7, 0.74),
                  shadow=(0.18, 0.2, 0.24), ground=(0.04, 0.05, 0.05), glow=(1.0, 1.0, 1.0), glow_strength=0.0,
                  coverage=(0.55, 0.85), softness=(0.5, 1.2), scale=(0.4, 1.2), absorb=(0.6, 1.2), weight=0.12),
}



@dataclass
class _Scene:
    colours: dict
    horizon: float  # sky horizon height, fraction of the frame from the bottom
    flatness: float  # perspective: large = flat sky plane, small = strong foreshortening
    gamma: float  # sky gradient shape
    sun: tuple  # (x in [-0.5, 0.5], height above horizon in sky units)
    glow_radius: float
    glow_strength: float
    layers: list  # cloud layers, dicts
    light: tuple  # (amplitude, period, phase, warm amplitude)
    silhouettes: list  # (kind, params) far to near
    start: float  # cloud time of frame 0, so that no frame is special (undeformed, unmorphed)


def clip_seed(seed: int, index: int) -> int:
    """Per-video seed: hashing (dataset seed, index) keeps videos independent across datasets too."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _check(seed, num_frames, resolution):
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise DatasetError(f"frames must be an integer >= 1, got {num_frames!r}")
    if not isinstance(resolution, (int, np.integer)) or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise DatasetError(f"resolution must be an integer in [{MIN_RESOLUTION}, {MAX_RESOLUTION}], got {resolution!r}")


def _jitter(rng, colour, spread=0.06, brightness=1.0):
    c = np.asarray(colour, np.float32) * np.exp(rng.normal(0.0, spread, 3)).astype(np.float32) * brightness
    return np.clip(c, 0.0, 1.0)


def _make_scene(seed: int) -> _Scene:
    """All random choices, drawn in a fixed order so they do not depend on resolution or length."""
    rng = np.random.default_rng(seed)
    names = list(PALETTES)
    w = np.array([PALETTES[n]["weight"] for n in names])
    pal = PALETTES[names[rng.choice(len(names), p=w / w.sum())]]
    bright = float(np.exp(rng.normal(0.0, 0.08)))
    colours = {k: _jitter(rng, pal[k], 0.06, bright) for k in ("zenith", "horizon", "glow")}
    colours.update({k: _jitter(rng, pal[k], 0.025, bright) for k in ("lit", "shadow")})
    colours["ground"] = _jitter(rng, pal["ground"], 0.15)
    horizon = float(rng.uniform(0.1, 0.34))
    flatness = float(rng.uniform(0.6, 2.0))
    gamma = float(rng.uniform(0.35, 0.75))
    sun = (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.05, 0.35)))
    glow_radius = float(rng.uniform(0.12, 0.35))
    glow_strength = pal["glow_strength"] * float(rng.uniform(0.5, 1.3))

    coverage = float(rng.uniform(*pal["coverage"]))
    speed = float(rng.uniform(0.006, 0.035))  # screen widths per frame at the top row
    angle = float(rng.uniform(0, 2 * np.pi))
    deck = dict(
        coverage=coverage,
        softness=float(rng.uniform(*pal.get("softness", (0.5, 1.1)))),
        opacity=float(rng.uniform(0.85, 1.0)),
        beta=float(rng.uniform(2.3, 3.1)),
        scale=float(rng.uniform(*pal.get("scale", (0.7, 2.0)))),  # lowest cloud frequency, cycles per screen width
        aniso=float(rng.uniform(1.0, 1.8)),
        wind=(speed * np.cos(angle), 0.6 * speed * np.sin(angle)),
        morph=float(rng.uniform(0.003, 0.012)),  # radians per frame of the density cross-fade
        swirl=float(rng.uniform(0.008, 0.02)),  # screen widths; keeps the strain below ~25%
        swirl_rate=float(rng.uniform(0.02, 0.06)),
        swirl_freq=float(rng.uniform(0.4, 1.0)),
        light=_light_offset(rng, sun),
        absorb=float(rng.uniform(*pal.get("absorb", (0.25, 0.7)))),
        dark=float(rng.uniform(0.1, 0.4)),
        detail=0.25,
    )
    layers = [deck]
    if rng.uniform() < 0.35:  # high thin streaks above the main deck
        s2 = speed * float(rng.uniform(0.3, 0.8))
        a2 = angle + float(rng.normal(0, 0.5))
        layers.insert(0, dict(deck, coverage=float(rng.uniform(0.3, 0.7)), softness=float(rng.uniform(0.6, 1.2)),
                              opacity=float(rng.uniform(0.25, 0.5)), beta=float(rng.uniform(2.4, 3.0)),
                              scale=float(rng.uniform(1.0, 2.0)), aniso=float(rng.uniform(3.0, 6.0)),
                              wind=(s2 * np.cos(a2), 0.6 * s2 * np.sin(a2)), dark=0.0, detail=0.1))
    light = (float(rng.uniform(0.03, 0.12)), float(rng.uniform(80, 300)), float(rng.uniform(0, 2 * np.pi)),
             float(rng.uniform(-0.05, 0.05)))

    silhouettes = []
    far = rng.uniform() < 0.7
    if far:
        silhouettes.append(("ridge", dict(base=horizon + float(rng.uniform(0.0, 0.04)), amp=float(rng.uniform(0.02, 0.12)),
                                           octaves=_octaves(rng, 6, 1.5, 0.55), sharp=bool(rng.uniform() < 0.4),
                                           haze=float(rng.uniform(0.3, 0.55)))))
    kind = rng.choice(["hills", "trees", "city", "flat"], p=[0.3, 0.35, 0.2, 0.15])
    base = horizon + float(rng.uniform(-0.04, 0.0))
    near = dict(base=base, amp=float(rng.uniform(0.01, 0.06)), octaves=_octaves(rng, 5, 1.0, 0.5), haze=0.0,
                sharp=False)
    if kind == "trees":
        n = int(rng.integers(6, 40))
        near["trees"] = [(float(rng.uniform(0, 1)), float(rng.uniform(0.03, 0.16)), float(rng.uniform(0.01, 0.04)),
                          bool(rng.uniform() < 0.5)) for _ in range(n)]
    elif kind == "city":
        xs, bld = 0.0, []
        while xs < 1.0:
            wdt = float(rng.uniform(0.03, 0.1))
            bld.append((xs, wdt, float(rng.uniform(0.02, 0.16)), bool(rng.uniform() < 0.12)))
            xs += wdt + (float(rng.uniform(0.0, 0.05)) if rng.uniform() < 0.3 else 0.0)
        near["buildings"] = bld
    elif kind == "flat":
        near["amp"] *= 0.2
        n = int(rng.integers(0, 5))
        near["trees"] = [(float(rng.uniform(0, 1)), float(rng.uniform(0.04, 0.12)), float(rng.uniform(0.01, 0.03)),
                          bool(rng.uniform() < 0.5)) for _ in range(n)]
    silhouettes.append((str(kind), near))
    start = float(rng.uniform(0, 1000))
    return _Scene(colours, horizon, flatness, gamma, sun, glow_radius, glow_strength, layers, light, silhouettes, start)


def _light_offset(rng, sun):
    """Sky-plane step towards the sun: the sun lies far away (towards the horizon) on its side."""
    d = np.array([sun[0] + rng.normal(0, 0.3), 1.0 + rng.normal(0, 0.5)])
    return tuple(float(x) for x in d / np.linalg.norm(d) * rng.uniform(0.04, 0.08))


def _octaves(rng, n, f0, gain):
    return [(f0 * 2.0 ** k * float(rng.uniform(0.8, 1.25)), gain ** k, float(rng.uniform(0, 2 * np.pi))) for k in range(n)]


def _profile(x: np.ndarray, p: dict) -> np.ndarray:
    """Height (fraction of frame from the bottom) of one silhouette layer at columns x in [0, 1]."""
    n = sum(a * np.sin(2 * np.pi * f * x + ph) for f, a, ph in p["octaves"])
    n = n / sum(a for _, a, _ in p["octaves"])
    if p["sharp"]:
        n = 1.0 - 2.0 * np.abs(n)
    h = p["base"] + p["amp"] * (0.5 + 0.5 * n)
    for cx, th, tw, conifer in p.get("trees", []):
        d = np.abs(x - cx) / tw
        bump = th * (1.0 - d) if conifer else th * np.sqrt(np.clip(1.0 - d * d, 0.0, 1.0)) * 0.8
        h = np.maximum(h, np.where(d < 1.0, p["base"] + bump, 0.0))
    for x0, bw, bh, antenna in p.get("buildings", []):
        inside = (x >= x0) & (x < x0 + bw)
        h = np.where(inside, np.maximum(h, p["base"] + bh), h)
        if antenna:
            ax = x0 + bw * 0.5
            h = np.where(np.abs(x - ax) < 0.004, np.maximum(h, p["base"] + bh + 0.05), h)
    return h


def _silhouette_layers(scene: _Scene, res: int):
    """Static (coverage [H, W], colour [3]) per layer, far to near, anti-aliased by supersampling."""
    s = res * _SUPERSAMPLE
    x = (np.arange(s) + 0.5) / s
    v = 1.0 - (np.arange(s) + 0.5) / s  # height from the bottom
    out = []
    for _, p in scene.silhouettes:
        inside = (v[:, None] < _profile(x, p)[None, :]).astype(np.float32)
        cov = cv2.resize(inside, (res, res), interpolation=cv2.INTER_AREA)
        colour = (1.0 - p["haze"]) * scene.colours["ground"] + p["haze"] * scene.colours["horizon"] * 0.75
        out.append((cov, colour.astype(np.float32)))
    return out


def horizon_mask(seed: int, resolution: int = 64) -> np.ndarray:
    """Pixels fully covered by the static silhouettes (bool [H, W]): identical in every frame."""
    _check(seed, 1, resolution)
    cov = np.zeros((resolution, resolution), np.float32)
    for c, _ in _silhouette_layers(_make_scene(int(seed)), resolution):
        cov = np.maximum(cov, c)
    return cov >= 1.0 - 1e-6


def _hash_normal(key: int, ky: np.ndarray, kx: np.ndarray, channel: int) -> np.ndarray:
    """Complex normal per integer frequency (splitmix64 hash): the same for every texture size,
    so one seed gives the same clouds at 64 px and 256 px (the larger just has finer detail)."""
    with np.errstate(over="ignore"):
        idx = ((ky.astype(np.int64) + (1 << 20)) << 22 | kx.astype(np.int64) << 2 | channel).astype(np.uint64)
        z = idx * np.uint64(0x9E3779B97F4A7C15) + np.uint64(key)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u1 = ((z >> np.uint64(32)).astype(np.float64) + 0.5) / 2.0 ** 32
    u2 = ((z & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) / 2.0 ** 32
    return np.sqrt(-2.0 * np.log(u1)) * np.exp(2j * np.pi * u2)


def _fbm_texture(key: int, n: int, layer: dict, res: int) -> np.ndarray:
    """Periodic fBm by spectral synthesis: [n+1, n+1, 4] = two independent fields, then both blurred.

    Each channel has zero mean and unit std, so one threshold gives the same coverage everywhere.
    """
    ky = np.fft.fftfreq(n, 1.0 / n).astype(np.int64)[:, None]  # cycles per texture period
    kx = np.arange(n // 2 + 1, dtype=np.int64)[None, :]
    fy, fx = ky / _PERIOD, kx / _PERIOD  # cycles per screen width
    f = np.sqrt((fx * layer["aniso"]) ** 2 + fy ** 2)
    f[0, 0] = 1.0
    lo, hi = layer["scale"], res * layer["detail"]  # detail 1/4: finest features about 2 px at the top row
    amp = f ** (-layer["beta"] / 2) * (1.0 - np.exp(-(f / lo) ** 2)) * np.exp(-(f / hi) ** 2)
    amp[0, 0] = 0.0
    blur = np.exp(-(f / 2.5) ** 2)  # lighting and the far, squeezed rows see only the large shapes
    sharp, soft = [], []
    for ch in range(2):
        spec = _hash_normal(key, np.broadcast_to(ky, amp.shape), np.broadcast_to(kx, amp.shape), ch) * amp
        sharp.append(np.fft.irfft2(spec, s=(n, n)))
        soft.append(np.fft.irfft2(spec * blur, s=(n, n)))
    tex = np.stack([(c - c.mean()) / (c.std() + 1e-12) for c in sharp + soft], -1).astype(np.float32)
    return np.pad(tex, ((0, 1), (0, 1), (0, 0)), mode="wrap")  # so linear look-ups never leave the texture


def _sample(tex: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Bilinear periodic look-up of tex at texel coordinates [T, H, W] -> [T, H, W, C]."""
    n = tex.shape[0] - 1
    t, h, w = px.shape
    mx = np.mod(px, n).reshape(t * h, w).astype(np.float32)
    my = np.mod(py, n).reshape(t * h, w).astype(np.float32)
    rows = max(1, 16000 // w)
    out = [cv2.remap(tex, mx[i:i + rows], my[i:i + rows], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
           for i in range(0, t * h, rows)]
    return np.concatenate(out, 0).reshape(t, h, w, -1)


def _smoothstep(e0, e1, x):
    u = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def render_clip(seed: int, num_frames: int = 32, resolution: int = 64) -> np.ndarray:
    """One sky time-lapse clip, uint8 [T, H, W, 3]; a pure function of the seed."""
    _check(seed, num_frames, resolution)
    seed, t_n, res = int(seed), int(num_frames), int(resolution)
    scene = _make_scene(seed)
    rng = np.random.default_rng([seed, 1])  # resolution-independent, like the scene
    c = scene.colours

    # Screen -> sky-plane coordinates (screen widths; 1 unit = the frame width at the top row).
    xs = ((np.arange(res) + 0.5) / res - 0.5).astype(np.float32)
    v = (1.0 - (np.arange(res) + 0.5) / res).astype(np.float32)
    s = np.clip((v - scene.horizon) / (1.0 - scene.horizon), 0.0, 1.0)  # 0 at horizon, 1 at the top
    e = scene.flatness
    depth = (1.0 + e) / (s + e)
    plane_x = xs[None, :] * depth[:, None]
    plane_z = np.broadcast_to((depth * (1.0 + e) * (1.0 - scene.horizon))[:, None], (res, res))

    # Sky: gradient + sun glow.
    g = (s ** scene.gamma)[:, None, None]
    sky = (1.0 - g) * c["horizon"] + g * c["zenith"]
    sx, sy = scene.sun
    dist = np.sqrt((xs[None, :] - sx) ** 2 + ((s[:, None] - sy) * (1.0 - scene.horizon)) ** 2)
    glow = scene.glow_strength * np.exp(-dist / scene.glow_radius)[..., None]
    sky = sky + glow * c["glow"]
    if scene.glow_strength > 0.2 and sy > 0.03:  # low sun: a small bright disk that clouds pass in front of
        sky = sky + 1.5 * _smoothstep(0.03, 0.018, dist)[..., None] * c["glow"]
    sky = np.broadcast_to(sky, (res, res, 3)).astype(np.float32)

    t = np.arange(t_n, dtype=np.float32)[:, None, None]
    tc = t + np.float32(scene.start)
    img = np.broadcast_to(sky, (t_n, res, res, 3)).copy()
    n = int(2 ** np.ceil(np.log2(_PERIOD * res)))
    texel = n / _PERIOD
    haze = _smoothstep(0.0, 0.3, s)[None, :, None, None]
    # Rows near the horizon squeeze many texels into one pixel: fade to a blurred copy there.
    squeeze = ((1.0 + e) / (s + e)) ** 2
    soft = np.clip((squeeze - 1.5) / 3.0, 0.0, 1.0)[None, :, None]
    for layer in scene.layers:
        tex = _fbm_texture(int(rng.integers(1 << 63)), n, layer, res)
        k = layer["swirl_freq"] * 2 * np.pi
        ph = rng.uniform(0, 2 * np.pi, 4)
        # Bounded, smooth, slowly turning displacement: clouds stretch and curl as they drift.
        d1x, d1z = np.sin(k * plane_z + ph[0]), np.cos(k * plane_x + ph[1])
        d2x, d2z = np.sin(k * plane_z * 0.7 + ph[2]), np.cos(k * plane_x * 1.3 + ph[3])
        phi = layer["swirl_rate"] * tc
        amp = layer["swirl"]
        wx, wz = layer["wind"]
        px = plane_x + wx * tc + amp * (d1x * np.sin(phi) + d2x * (1.0 - np.cos(phi)))
        pz = plane_z + wz * tc + amp * (d1z * np.sin(phi) + d2z * (1.0 - np.cos(phi)))
        th = layer["morph"] * tc
        cos_th, sin_th = np.cos(th), np.sin(th)

        def look(ox, oz):
            f = _sample(tex, (px + ox) * texel, (pz + oz) * texel)
            return f[..., 0] * cos_th + f[..., 1] * sin_th, f[..., 2] * cos_th + f[..., 3] * sin_th

        thr = float(np.quantile(tex[..., 0], 1.0 - layer["coverage"]))
        sharp, blur = look(0.0, 0.0)
        dens = sharp * (1.0 - soft) + blur * soft
        lx, lz = layer["light"]
        # Optical depth towards the sun from two blurred look-ups: sun-facing edges bright, cores and far sides dark.
        depth_l = sum(np.maximum(look(lx * j, lz * j)[1] - thr, 0.0) for j in (1, 2))
        lit = np.exp(-layer["absorb"] * depth_l) * (1.0 - layer["dark"] * _smoothstep(0.0, 2.0, dens - thr))
        puff = np.clip((sharp - blur) * (1.0 - soft), -1.5, 1.5)  # small-scale billows catch light unevenly
        lit = np.clip(lit * (1.0 + 0.15 * puff), 0.0, 1.0)[..., None]
        alpha = (_smoothstep(thr, thr + layer["softness"], dens) * layer["opacity"])[..., None] * haze
        cloud = c["shadow"] + (c["lit"] - c["shadow"]) * lit
        cloud = cloud + 0.8 * glow[None] * c["glow"] * lit  # sun-side rims catch the glow
        img = img * (1.0 - alpha) + cloud * alpha

    amp_l, period, phase, warm = scene.light
    wave = np.sin(2 * np.pi * t[..., None] / period + phase)  # [T, 1, 1, 1]
    img = img * (1.0 + amp_l * wave) * (1.0 + warm * wave * np.array([1.0, 0.0, -1.0], np.float32))

    for cov, colour in _silhouette_layers(scene, res):
        img = img * (1.0 - cov[None, ..., None]) + colour * cov[None, ..., None]
    return to_uint8(img)


def _png(frame: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise DatasetError("PNG encoding failed")
    return buf.tobytes()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _encoded_clip(job) -> list:
    """Worker: PNG bytes of every frame of clip ``index`` (pure function of its arguments)."""
    seed, index, frames, resolution = job
    with opencv_threads(1):
        return [_png(f) for f in render_clip(clip_seed(seed, index), frames, resolution)]


def _encoded_clips(seed, videos, frames, resolution, workers):
    """PNG-encoded clips in index order, rendered by ``workers`` processes (1: in this process)."""
    jobs = [(int(seed), i, int(frames), int(resolution)) for i in range(int(videos))]
    if workers <= 1 or videos < 2:
        yield from map(_encoded_clip, jobs)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(int(workers)) as pool:
        yield from pool.imap(_encoded_clip, jobs, chunksize=4)


def write_dataset(dst: Union[str, os.PathLike], videos: int, frames: int, resolution: int, seed: int = 0,
                  progress: bool = True, workers: int = 1) -> Path:
    """Write the StyleGAN-V layout ``dst/<video>/frame_000000.png`` (inside a zip if dst ends with .zip).

    ``workers`` processes render and encode clips in parallel; the bytes do not depend on it.
    Written under a temporary name and renamed at the end, so an interrupted run never
    leaves something that looks like a finished dataset.
    """
    if not isinstance(videos, (int, np.integer)) or videos < 1:
        raise DatasetError(f"videos must be an integer >= 1, got {videos!r}")
    if not isinstance(workers, (int, np.integer)) or not 1 <= workers <= 64:
        raise DatasetError(f"workers must be an integer in [1, 64], got {workers!r}")
    _check(seed, frames, resolution)
    dst = Path(dst)
    as_zip = dst.suffix.lower() == ".zip"
    if dst.exists() and (as_zip or not dst.is_dir() or any(dst.iterdir())):
        raise DatasetError(f"{dst} already exists; choose a new path or remove it first")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.partial")
    _remove(tmp)
    from tqdm.auto import tqdm

    zf = zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) if as_zip else None
    try:
        clips = _encoded_clips(seed, videos, frames, resolution, workers)
        for i, pngs in enumerate(tqdm(clips, total=int(videos), desc=f"sky {resolution}px", unit="video",
                                      disable=not progress)):
            name = f"sky_{i:06d}"
            if zf is None:
                (tmp / name).mkdir(parents=True)
            for t, data in enumerate(pngs):
                if zf is None:
                    (tmp / name / f"frame_{t:06d}.png").write_bytes(data)
                else:
                    zf.writestr(f"{name}/frame_{t:06d}.png", data)
        if zf is not None:
            zf.close()
    except BaseException:
        if zf is not None:
            zf.close()
        _remove(tmp)
        raise
    if dst.is_dir():
        dst.rmdir()  # the empty folder checked above
    os.replace(tmp, dst)
    return dst


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gendef.data.synthetic",
        description="Write a procedural sky time-lapse dataset (folder per video of PNG frames, or a .zip).")
    parser.add_argument("dst", help="output folder (must be new or empty) or a .zip file")
    parser.add_argument("--videos", type=int, default=1000, help="number of clips (default 1000)")
    parser.add_argument("--frames", type=int, default=32, help="frames per clip (default 32)")
    parser.add_argument("--resolution", type=int, default=64, help="frame size in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, help="processes rendering in parallel (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        out = write_dataset(args.dst, args.videos, args.frames, args.resolution, args.seed, progress=not args.quiet,
                            workers=args.workers)
    except (DatasetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    print(f"wrote {args.videos} clips x {args.frames} frames at {args.resolution}px to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
