"""Loop helpers shared by both training stages (no model code lives here).

Config = one YAML with common keys plus ``pretrain:`` / ``finetune:`` sections,
then ``key=value`` overrides from the command line. Checkpoints are accelerate
``save_state`` folders (optimizers, scaler, every process's RNG) plus the
networks and EMA in safetensors and the step counters in JSON; each is written
to a temporary folder and renamed, and ``checkpoints/latest`` is replaced
atomically, so a kill at any moment leaves the previous checkpoint usable.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
import yaml

DEFAULTS = {
    # data
    "data": None,
    "resolution": None,  # defaults to model.resolution
    "hflip": False,
    "num_workers": 0,
    "clip_frames": 3,
    "max_dist": 32,
    "gen_time_range": 128,
    # run
    "output_dir": None,
    "seed": 0,
    "max_steps": None,
    "max_kimg": 25000,
    "resume": None,
    "init": None,
    "mixed_precision": "no",
    "log_every": 10,
    "ckpt_every": 1000,
    "keep_checkpoints": 3,
    "sample_every": 1000,
    "sample_count": 16,
    "sample_frames": 16,
    "eval_every": 0,
    "eval_metrics": "fid",
    "eval": {},
    "push_to_hub": None,
    "progress": True,
    # optimisation
    "batch_size": 64,
    "grad_accum": 1,
    "lr": 0.0025,
    "lr_d": None,
    "betas": [0.0, 0.99],
    "r1_gamma": 0.5,
    "r1_interval": 16,
    "ema_kimg": 20.0,
    "ema_rampup": 0.05,
    "augment": "ada",
    "aug_p": 0.0,
    "ada_target": 0.6,
    "ada_interval": 4,
    "ada_kimg": 500,
    "lambda_reg": 1.0,
    "reg_every": 1,
    "freeze_canonical": False,
    "reset_deformation": True,
    # networks
    "model": {},
    "disc": {},
}

STAGES = ("pretrain", "finetune")


class ConfigError(ValueError):
    """A config file or override that cannot be used (message is user-facing)."""


def _parse_value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_config(path: Optional[str], overrides: Iterable[str] = (), stage: str = "pretrain") -> dict:
    """Defaults <- YAML common keys <- YAML ``stage`` section <- ``key=value`` overrides
    (dotted keys reach into ``model.`` / ``disc.`` / ``eval.``)."""
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config {path}: no such file")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config {path}: invalid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path}: expected a mapping at the top level")
        section = raw.get(stage) or {}
        for layer in ({k: v for k, v in raw.items() if k not in STAGES}, section):
            for k, v in layer.items():
                _set(cfg, k, v, source=str(path))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        k, v = item.split("=", 1)
        k = k.strip().lstrip("-")
        if k in STAGES:
            raise ConfigError(f"override {item!r}: set the key directly (the stage section is already applied)")
        _set(cfg, k, _parse_value(v), source="command line")
    return cfg


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _coerce(value):
    """YAML 1.1 reads '1e-3' as a string; numbers written that way are meant as floats."""
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    if isinstance(value, dict):
        return {k: _coerce(v) for k, v in value.items()}
    return value


def _set(cfg: dict, key: str, value, source: str) -> None:
    value = _coerce(value)
    parts = key.split(".")
    if parts[0] not in DEFAULTS:
        raise ConfigError(f"{source}: unknown config key {parts[0]!r}; known keys: {', '.join(sorted(DEFAULTS))}")
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"{source}: {key!r}: {part!r} is not a section")
        node = node[part]
    if isinstance(DEFAULTS.get(key), dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key!r} must be a mapping")
        node[parts[-1]] = {**node.get(parts[-1], {}), **value}
    else:
        node[parts[-1]] = value


def validate_config(cfg: dict, stage: str) -> None:
    if not cfg["data"]:
        raise ConfigError("no dataset: pass data=PATH (a folder or .zip of frame folders, or a folder of videos)")
    if not cfg["output_dir"]:
        raise ConfigError("no output folder: pass output_dir=PATH")
    if stage == "finetune" and not cfg["init"]:
        raise ConfigError("stage 2 needs init=<stage-1 output folder> (also when resuming: it defines the networks)")
    for k in ("batch_size", "grad_accum", "r1_interval", "ckpt_every", "log_every"):
        if not isinstance(cfg[k], int) or cfg[k] < 1:
            raise ConfigError(f"{k} must be a positive integer, got {cfg[k]!r}")
    if cfg["max_steps"] is not None and (not isinstance(cfg["max_steps"], int) or cfg["max_steps"] < 0):
        raise ConfigError(f"max_steps must be a non-negative integer, got {cfg['max_steps']!r}")
    if cfg["augment"] not in ("ada", "fixed", "none"):
        raise ConfigError(f"augment must be ada, fixed or none, got {cfg['augment']!r}")
    for k in ("lr", "r1_gamma", "lambda_reg", "ema_kimg"):
        if not isinstance(cfg[k], (int, float)) or cfg[k] < 0:
            raise ConfigError(f"{k} must be a non-negative number, got {cfg[k]!r}")


def per_process_batch(cfg: dict, num_processes: int) -> int:
    total = cfg["batch_size"]
    div = num_processes * cfg["grad_accum"]
    if total % div:
        raise ConfigError(f"batch_size {total} is not divisible by processes x grad_accum = {div}")
    return total // div


def flat_scalars(cfg: dict, prefix: str = "") -> dict:
    """Config flattened to scalars (TensorBoard's hparams only take those)."""
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(flat_scalars(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float, str, bool)):
            out[prefix + k] = v
        else:
            out[prefix + k] = str(v)
    return out


# ----------------------------------------------------------------------------- data order
class StepBatchSampler:
    """Infinite batches of (index, sample_seed) derived from (seed, rank, step, micro-batch):
    the data order depends only on the step, so a resumed run sees exactly what the
    uninterrupted run would have seen, with any number of workers."""

    def __init__(self, num_items: int, batch: int, seed: int, rank: int, start_step: int, accum: int = 1):
        self.n, self.batch, self.seed, self.rank = num_items, batch, seed, rank
        self.start_step, self.accum = start_step, accum

    def __iter__(self):
        step = self.start_step
        while True:
            for micro in range(self.accum):
                rng = np.random.default_rng([self.seed, self.rank, step, micro])
                idx = rng.integers(0, self.n, size=self.batch)
                seeds = rng.integers(0, 2**31 - 1, size=self.batch)
                yield [(int(i), int(s)) for i, s in zip(idx, seeds)]
            step += 1


def infinite_loader(dataset, cfg: dict, batch: int, rank: int, start_step: int):
    sampler = StepBatchSampler(len(dataset), batch, int(cfg["seed"]), rank, start_step, cfg["grad_accum"])
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=int(cfg["num_workers"]),
        persistent_workers=int(cfg["num_workers"]) > 0,
        pin_memory=torch.cuda.is_available(),
        # Its own generator: creating the iterator must not consume the global RNG that
        # checkpoints restore, or a resumed run would drift from the uninterrupted one.
        generator=torch.Generator().manual_seed(int(cfg["seed"]) * 1000 + rank),
    )
    return iter(loader)


def sample_clip_times(batch: int, num_frames: int, max_dist: int, time_range: int, device) -> torch.Tensor:
    """Times for generated clips, drawn like the real ones (StyleGAN-V's sparse sampling) but
    starting anywhere in [0, time_range) so G learns the whole range used at evaluation.
    Uses torch's RNG, which checkpoints restore."""
    out = torch.empty(batch, num_frames)
    for i in range(batch):
        d = int(torch.randint(num_frames - 1, max(max_dist, num_frames), ()))
        start = int(torch.randint(0, max(time_range - d, 1), ()))
        inner = (torch.randperm(d - 1)[: num_frames - 2] + 1).sort().values if num_frames > 2 else torch.empty(0)
        out[i] = start + torch.cat([torch.zeros(1), inner.float(), torch.full((1,), float(d))])
    return out.to(device)


# ----------------------------------------------------------------------------- EMA
class EMA:
    """Exponential moving average of the generator (StyleGAN's half-life in kimg, with ramp-up)."""

    def __init__(self, model: torch.nn.Module):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def beta(self, cfg: dict, cur_nimg: int) -> float:
        ema_nimg = cfg["ema_kimg"] * 1000
        if cfg["ema_rampup"]:
            ema_nimg = min(ema_nimg, cur_nimg * cfg["ema_rampup"])
        return 0.5 ** (cfg["batch_size"] / max(ema_nimg, 1e-8))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, beta: float) -> None:
        for pe, p in zip(self.model.parameters(), model.parameters()):
            pe.lerp_(p.detach().to(pe.dtype), 1.0 - beta)
        for be, b in zip(self.model.buffers(), model.buffers()):
            be.copy_(b)


# ----------------------------------------------------------------------------- augmentation
def augment(x: torch.Tensor, p: float) -> torch.Tensor:
    """Differentiable DiffAugment-style ops (translation, brightness, saturation, contrast,
    cutout), each applied to a sample with probability ``p``. Clips [B, K, 3, H, W] get
    the same parameters for all their frames so augmentation never looks like motion."""
    if p <= 0:
        return x
    video = x.ndim == 5
    b = x.shape[0]
    k = x.shape[1] if video else 1
    img = x.reshape(b * k, *x.shape[-3:])
    dev, dt = x.device, img.dtype

    def per_sample(*shape):
        r = torch.rand(b, *shape, device=dev, dtype=dt)
        return r.repeat_interleave(k, dim=0)

    def gate():
        return (per_sample(1, 1, 1) < p).to(dt)

    h, w = img.shape[-2:]
    # translation by up to 1/8 of the size, zero padded
    g = gate()
    shift = (per_sample(2) * 2 - 1) * 0.125 * 2 * g[:, :, 0, 0]
    theta = torch.zeros(b * k, 2, 3, device=dev, dtype=dt)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # colour (images live in [-1, 1])
    img = img + (per_sample(1, 1, 1) - 0.5) * gate()
    mean_c = img.mean(dim=1, keepdim=True)
    img = mean_c + (img - mean_c) * (1 + (per_sample(1, 1, 1) * 2 - 1) * gate())
    mean_all = img.mean(dim=(1, 2, 3), keepdim=True)
    img = mean_all + (img - mean_all) * (1 + (per_sample(1, 1, 1) - 0.5) * gate())
    # cutout of a quarter of the area
    g = gate()
    cy, cx = per_sample(1, 1) * h, per_sample(1, 1) * w
    ys = torch.arange(h, device=dev, dtype=dt)[None, :, None]
    xs = torch.arange(w, device=dev, dtype=dt)[None, None, :]
    hole = ((ys - cy).abs() < h / 4) & ((xs - cx).abs() < w / 4)
    img = img * (1 - hole[:, None].to(dt) * g)
    return img.reshape(x.shape)


class AdaptiveAugment:
    """ADA's heuristic: raise p when D is overconfident on reals (E[sign D(real)] > target)."""

    def __init__(self, cfg: dict, p: float = None):
        self.cfg = cfg
        self.p = float(cfg["aug_p"] if p is None else p)
        self.signs = []

    def observe(self, real_logits: torch.Tensor) -> None:
        if self.cfg["augment"] == "ada":
            self.signs.append(real_logits.detach().sign().mean().float())

    def step(self, accelerator) -> Optional[float]:
        if self.cfg["augment"] != "ada" or len(self.signs) < self.cfg["ada_interval"]:
            return None
        rt = accelerator.reduce(torch.stack(self.signs).mean().to(accelerator.device), reduction="mean").item()
        self.signs.clear()
        n = self.cfg["batch_size"] * self.cfg["ada_interval"]
        self.p = float(min(max(self.p + math.copysign(n / (self.cfg["ada_kimg"] * 1000), rt - self.cfg["ada_target"]), 0.0), 1.0))
        return rt

    @property
    def current(self) -> float:
        return 0.0 if self.cfg["augment"] == "none" else self.p


# ----------------------------------------------------------------------------- distributed helpers
def sync_gradients(module: torch.nn.Module, accelerator) -> None:
    """Average gradients over processes (one flat all-reduce). Done by hand instead of DDP so
    the GAN's several forwards per step, R1's double backward and the unused video-mode
    parameters of D in stage 1 need no special cases."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    if accelerator.num_processes == 1 or not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    flat = accelerator.reduce(flat, reduction="mean")
    i = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[i : i + n].view_as(p))
        i += n


def broadcast_parameters(module: torch.nn.Module, accelerator) -> None:
    if accelerator.num_processes == 1:
        return
    from accelerate.utils import broadcast

    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            t.copy_(broadcast(t.detach().clone()))


def all_finite(accelerator, *values: torch.Tensor) -> bool:
    """True when every process saw finite losses (all processes must agree to stop together)."""
    bad = torch.zeros((), device=accelerator.device)
    for v in values:
        if v is not None and not torch.isfinite(v.detach()).all():
            bad += 1
    return accelerator.reduce(bad, reduction="sum").item() == 0


# ----------------------------------------------------------------------------- checkpoints
class Checkpointer:
    """``output_dir/checkpoints/step-XXXXXXXX`` folders plus an atomically replaced ``latest`` file."""

    def __init__(self, output_dir, keep: int = 3):
        self.root = Path(output_dir) / "checkpoints"
        self.keep = int(keep)

    def latest(self) -> Optional[Path]:
        ptr = self.root / "latest"
        if ptr.is_file():
            p = self.root / ptr.read_text().strip()
            if (p / "train_state.json").is_file():
                return p
        # No pointer, or killed between renames: the newest complete checkpoint folder.
        done = [p for p in sorted(self.root.glob("step-*"), reverse=True) if (p / "train_state.json").is_file()]
        return done[0] if done else None

    def resolve(self, resume) -> Optional[Path]:
        if not resume:
            return None
        if str(resume) == "latest":
            return self.latest()
        p = Path(resume)
        if (p / "checkpoints" / "latest").is_file():
            return Checkpointer(p).latest()
        if not (p / "train_state.json").is_file():
            raise ConfigError(f"resume={resume}: not a checkpoint folder (no train_state.json)")
        return p

    def save(self, accelerator, step: int, modules: Dict[str, torch.nn.Module], state: dict) -> Path:
        final = self.root / f"step-{step:08d}"
        tmp = self.root / f".tmp-step-{step:08d}"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        if accelerator.is_main_process:
            from safetensors.torch import save_file

            for name, m in modules.items():
                sd = {k: v.detach().contiguous().cpu() for k, v in m.state_dict().items()}
                save_file(sd, str(tmp / f"{name}.safetensors"))
            _write_atomic(tmp / "train_state.json", json.dumps(state, indent=1))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            old = self.root / f".old-{final.name}"
            if final.exists():  # re-saving a step (resumed from an earlier one): swap, never delete first
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            _write_atomic(self.root / "latest", final.name + "\n")
            shutil.rmtree(old, ignore_errors=True)
            self._prune(final)
        accelerator.wait_for_everyone()
        return final

    def _prune(self, current: Path) -> None:
        steps = sorted(p for p in self.root.glob("step-*") if p.is_dir())
        for p in steps[: max(0, len(steps) - self.keep)]:
            if p != current:
                shutil.rmtree(p, ignore_errors=True)
        for p in self.root.glob(".tmp-step-*"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)

    def load(self, accelerator, path: Path, modules: Dict[str, torch.nn.Module]) -> dict:
        from safetensors.torch import load_file

        accelerator.load_state(str(path))
        for name, m in modules.items():
            m.load_state_dict(load_file(str(path / f"{name}.safetensors"), device=str(accelerator.device)))
        return json.loads((path / "train_state.json").read_text())


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_discriminator(D: torch.nn.Module, disc_cfg: dict, folder) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    save_file({k: v.detach().contiguous().cpu() for k, v in D.state_dict().items()}, str(folder / "discriminator.safetensors"))
    _write_atomic(folder / "discriminator_config.json", json.dumps(disc_cfg, indent=1))


def export_generator(G_ema, D, disc_cfg: dict, cfg: dict, folder) -> None:
    """What users load: ``GenDeF.from_pretrained(folder)``; stage 2 also reads the D weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    G_ema.refresh_w_avg()  # truncation needs the mean w; cheaper and exact at export time
    G_ema.save_pretrained(str(folder))
    save_discriminator(D, disc_cfg, folder)
    _write_atomic(folder / "training_config.yaml", yaml.safe_dump(cfg, sort_keys=False))


# ----------------------------------------------------------------------------- samples
def tile(videos: np.ndarray) -> np.ndarray:
    """[N, T, H, W, 3] -> [T, rows*H, cols*W, 3] grid."""
    n, t, h, w, c = videos.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    pad = np.zeros((rows * cols - n, t, h, w, c), videos.dtype)
    v = np.concatenate([videos, pad]).reshape(rows, cols, t, h, w, c)
    return v.transpose(2, 0, 3, 1, 4, 5).reshape(t, rows * h, cols * w, c)


def write_samples(G_ema, cfg: dict, step: int, output_dir, video: bool) -> List[Path]:
    """Fixed-seed EMA samples: a png of canonical images (stage 1) or an mp4 + png (stage 2)."""
    from gendef.videoio import write_video
    from PIL import Image

    folder = Path(output_dir) / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    seeds = list(range(int(cfg["sample_count"])))
    frames = int(cfg["sample_frames"]) if video else 1
    vids = G_ema.sample_batch(seeds, num_frames=frames)
    canon = np.stack([v.canonical for v in vids])[:, None]
    paths = []
    png = folder / f"{'canonical' if video else 'images'}-{step:08d}.png"
    Image.fromarray((tile(canon)[0] * 255 + 0.5).clip(0, 255).astype(np.uint8)).save(png)
    paths.append(png)
    if video:
        grid = tile(np.stack([v.frames() for v in vids]))
        paths.append(write_video(grid, folder / f"video-{step:08d}.mp4", fps=vids[0].fps))
    return paths


def fail(message: str, code: int = 2):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


# ----------------------------------------------------------------------------- the run
def discriminator_step(run, D, opt_D, state: dict, draw, p: float, gamma: float, interval: int):
    """One D update shared by both stages: logistic loss on reals vs fakes, lazy R1 on reals.

    ``draw(do_r1)`` returns (real, fake, real_times, fake_times); times are None in image mode.
    """
    from gendef import losses

    acc = run.accelerator
    do_r1 = gamma > 0 and state["step"] % interval == 0
    opt_D.zero_grad(set_to_none=True)
    for _ in range(run.cfg["grad_accum"]):
        real, fake, real_t, fake_t = draw(do_r1)
        with acc.autocast():
            real_logits = D(augment(real, p), real_t)
            fake_logits = D(augment(fake, p), fake_t)
        loss_D = losses.d_logistic(real_logits.float(), fake_logits.float())
        r1 = losses.r1_penalty(real_logits, real) if do_r1 else None
        total = loss_D + (r1 * (gamma / 2 * interval) if r1 is not None else 0.0)
        acc.backward(total / run.cfg["grad_accum"])
        run.ada.observe(real_logits)
    run.check_finite(state, loss_D=loss_D, r1=r1)
    sync_gradients(D, acc)
    opt_D.step()
    return loss_D, r1, real_logits


class Run:
    """Everything around the two stages' inner steps: accelerator, trackers, data order,
    optimizers, resume, NaN guard, EMA/ADA bookkeeping, checkpoints, samples, eval, export."""

    def __init__(self, cfg: dict, stage: str):
        import logging

        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        self.cfg, self.stage = cfg, stage
        self.out = Path(cfg["output_dir"])
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        self.accelerator = Accelerator(
            mixed_precision=cfg["mixed_precision"],
            log_with="tensorboard",
            project_config=ProjectConfiguration(project_dir=str(self.out), logging_dir=str(self.out)),
        )
        acc = self.accelerator
        try:  # before anything is written: a bad config leaves no half-made run folder
            self.batch = per_process_batch(cfg, acc.num_processes)
        except ConfigError as e:
            fail(str(e))
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.out / f"{stage}_config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        acc.wait_for_everyone()
        acc.init_trackers(f"logs/{stage}", config=flat_scalars(cfg))
        self.ckpt = Checkpointer(self.out, cfg["keep_checkpoints"])
        self.ada = AdaptiveAugment(cfg)
        self.datasets = []
        self._last_saved = None
        self.push_failed = False

    def dataset(self, cls, resolution: int, **kwargs):
        from gendef.data import DatasetError

        res = self.cfg["resolution"] or resolution
        if res != resolution:
            fail(f"resolution={res} does not match the model's resolution {resolution}")
        try:
            ds = cls(self.cfg["data"], resolution, hflip=bool(self.cfg["hflip"]), seed=int(self.cfg["seed"]), **kwargs)
        except DatasetError as e:
            fail(str(e))
        if self.accelerator.is_main_process:
            print(f"dataset {self.cfg['data']}: {len(ds.videos)} videos, {len(ds)} items, {len(ds.skipped)} skipped")
        self.datasets.append(ds)
        return ds

    def optimizers(self, g_params, d_params):
        cfg = self.cfg
        lr_d = cfg["lr_d"] if cfg["lr_d"] is not None else cfg["lr"]
        b1, b2 = cfg["betas"]
        # StyleGAN2's lazy-regularisation correction of Adam's hyper-parameters for D.
        c = cfg["r1_interval"] / (cfg["r1_interval"] + 1) if cfg["r1_gamma"] > 0 else 1.0
        opt_G = torch.optim.Adam([p for p in g_params if p.requires_grad], lr=cfg["lr"], betas=(b1, b2), eps=1e-8)
        opt_D = torch.optim.Adam(list(d_params), lr=lr_d * c, betas=(b1**c, b2**c), eps=1e-8)
        self._hyper = [(opt_G, cfg["lr"], (b1, b2)), (opt_D, lr_d * c, (b1**c, b2**c))]
        self.optims = self.accelerator.prepare(opt_G, opt_D)
        return self.optims

    def resume(self, modules: Dict[str, torch.nn.Module], broadcast_models) -> dict:
        from accelerate.utils import set_seed

        acc = self.accelerator
        for m in broadcast_models:
            broadcast_parameters(m, acc)
        set_seed(int(self.cfg["seed"]), device_specific=True)
        state = {"stage": self.stage, "step": 0, "cur_nimg": 0, "aug_p": self.ada.p, "ada_signs": [], "best": None}
        try:
            path = self.ckpt.resolve(self.cfg["resume"])
        except ConfigError as e:
            fail(str(e))
        if self.cfg["resume"] and path is None:
            if acc.is_main_process:
                print(f"resume={self.cfg['resume']}: no checkpoint in {self.ckpt.root} yet, starting from scratch")
        if path is not None:
            saved_stage = json.loads((path / "train_state.json").read_text()).get("stage")
            if saved_stage != self.stage:
                fail(f"{path} is a {saved_stage} checkpoint; resume it with train/{saved_stage}.py")
            try:
                state.update(self.ckpt.load(acc, path, modules))
            except (RuntimeError, ValueError, KeyError, OSError) as e:
                fail(f"cannot resume from {path}: it does not match this config ({str(e).splitlines()[0][:200]})")
            self.ada.p = float(state["aug_p"])
            self.ada.signs = [torch.tensor(v) for v in state.get("ada_signs", [])]
            # The config, not the checkpoint, decides lr/betas: resuming with a lower lr must work.
            for opt, lr, betas in self._hyper:
                for group in opt.param_groups:
                    group["lr"], group["betas"] = lr, betas
            self._last_saved = state["step"]
            if acc.is_main_process:
                print(f"resumed from {path} at step {state['step']} ({state['cur_nimg'] / 1000:.1f} kimg)")
        return state

    def loader(self, dataset, start_step: int):
        return infinite_loader(dataset, self.cfg, self.batch, self.accelerator.process_index, start_step)

    def _total_steps(self) -> Optional[int]:
        cfg = self.cfg
        steps = [cfg["max_steps"]] if cfg["max_steps"] is not None else []
        if cfg["max_kimg"]:
            steps.append(int(math.ceil(cfg["max_kimg"] * 1000 / cfg["batch_size"])))
        return min(steps) if steps else None

    def should_continue(self, state: dict) -> bool:
        total = self._total_steps()
        return total is None or state["step"] < total

    def progress(self, state: dict):
        from tqdm import tqdm

        return tqdm(
            total=self._total_steps(),
            initial=state["step"],
            desc=self.stage,
            unit="step",
            disable=not (self.accelerator.is_main_process and self.cfg["progress"]),
            dynamic_ncols=True,
        )

    def check_finite(self, state: dict, **values) -> None:
        if all_finite(self.accelerator, *values.values()):
            return
        acc = self.accelerator
        bad = ", ".join(f"{k}={v.item():.4g}" for k, v in values.items() if v is not None)
        last = self.ckpt.latest()
        keep = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        if acc.is_main_process:
            print(
                f"error: non-finite loss at step {state['step']} ({bad}); training stopped, {keep}. "
                f"Resume with resume=latest and a lower lr / higher r1_gamma.",
                file=sys.stderr,
            )
        acc.end_training()
        raise SystemExit(3)

    def end_step(self, state: dict, ema: EMA, G, bar, t0: float, scalars: dict) -> None:
        cfg, acc = self.cfg, self.accelerator
        state["step"] += 1
        state["cur_nimg"] += cfg["batch_size"]
        ema.update(G, ema.beta(cfg, state["cur_nimg"]))
        rt = self.ada.step(acc)
        state["aug_p"] = self.ada.p
        if state["step"] % cfg["log_every"] == 0 or state["step"] == 1:
            logs = {k: float(v.item()) for k, v in scalars.items() if v is not None}
            logs.update({"progress/kimg": state["cur_nimg"] / 1000, "aug/p": self.ada.current,
                         "time/sec_per_step": time.time() - t0,
                         "data/skipped": sum(d.num_skipped for d in self.datasets)})
            if rt is not None:
                logs["aug/rt"] = rt
            acc.log(logs, step=state["step"])
            bar.set_postfix(kimg=f"{state['cur_nimg'] / 1000:.1f}",
                            G=f"{logs.get('loss/G', float('nan')):.3f}", D=f"{logs.get('loss/D', float('nan')):.3f}")
        bar.update(1)

    def save(self, state: dict, modules: dict) -> None:
        if self._last_saved == state["step"]:
            return
        saved = dict(state, ada_signs=[float(v) for v in self.ada.signs])
        self.ckpt.save(self.accelerator, state["step"], modules, saved)
        self._last_saved = state["step"]

    def periodic(self, state: dict, modules: dict, G_ema, video: bool) -> None:
        cfg, acc, step = self.cfg, self.accelerator, state["step"]
        if cfg["sample_every"] and step % cfg["sample_every"] == 0 and acc.is_main_process:
            self._log_samples(write_samples(G_ema, cfg, step, self.out, video), step)
        if cfg["eval_every"] and step % cfg["eval_every"] == 0:
            self.evaluate(state, G_ema)
        if step % cfg["ckpt_every"] == 0:
            self.save(state, modules)

    def _log_samples(self, paths: List[Path], step: int) -> None:
        """The png grid also goes to TensorBoard's image tab (videos stay as mp4 files)."""
        from PIL import Image

        writer = self.accelerator.get_tracker("tensorboard", unwrap=True)
        if writer is None or not hasattr(writer, "add_image"):
            return
        with Image.open(paths[0]) as im:
            writer.add_image("samples/" + paths[0].name.split("-")[0], np.asarray(im.convert("RGB")), step, dataformats="HWC")

    def evaluate(self, state: dict, G_ema) -> Optional[dict]:
        acc = self.accelerator
        results = None
        failed = torch.zeros((), device=acc.device)
        if acc.is_main_process:
            from gendef.data import DatasetError
            from gendef.metrics import MetricsError, evaluate

            names = [m.strip() for m in str(self.cfg["eval_metrics"]).split(",") if m.strip()]
            try:
                results = evaluate(G_ema, self.cfg["data"], names, device=acc.device, **self.cfg["eval"])
            except (MetricsError, DatasetError, TypeError) as e:
                print(f"warning: evaluation disabled for this run: {e}", file=sys.stderr)
                failed += 1
        if results is not None:
            acc.log({f"metrics/{k}": v for k, v in results.items()}, step=state["step"])
            print(f"step {state['step']}: " + ", ".join(f"{k}={v:.3f}" for k, v in results.items()))
            key = names[0]
            if state["best"] is None or results[key] < state["best"]:
                state["best"] = float(results[key])
                G_ema.save_pretrained(str(self.out / "best"))
                _write_atomic(self.out / "best" / "metrics.json", json.dumps({"step": state["step"], **results}))
        if acc.reduce(failed, reduction="sum").item() > 0:  # every process must agree to stop evaluating
            self.cfg["eval_every"] = 0
        return results

    def finish(self, state: dict, modules: dict, G_ema, D, disc_cfg: dict, video: bool) -> None:
        acc = self.accelerator
        self.save(state, modules)
        if acc.is_main_process:
            export_generator(G_ema, D, disc_cfg, self.cfg, self.out)
            if self.cfg["sample_every"]:
                self._log_samples(write_samples(G_ema, self.cfg, state["step"], self.out, video), state["step"])
            print(f"done at step {state['step']} ({state['cur_nimg'] / 1000:.1f} kimg); "
                  f"generator exported to {self.out} (GenDeF.from_pretrained)")
            if self.cfg["push_to_hub"]:
                repo = str(self.cfg["push_to_hub"])
                try:
                    G_ema.push_to_hub(repo)
                    print(f"pushed to https://huggingface.co/{repo}")
                except Exception as e:  # network/auth problems must not hide that training succeeded
                    print(f"error: push_to_hub={repo} failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                          f"the model is saved in {self.out}", file=sys.stderr)
                    self.push_failed = True
        acc.wait_for_everyone()

    def close(self) -> None:
        from accelerate.state import AcceleratorState

        self.accelerator.end_training()
        if self.accelerator.num_processes == 1:
            AcceleratorState._reset_state(reset_partial_state=True)
