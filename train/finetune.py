"""Stage 2: fine-tune G_c + G_d + a video-mode D on sparse 3-frame clips.

    accelerate launch train/finetune.py --config train/configs/sky256.yaml data=... output_dir=... init=<stage-1 output>

Loss: non-saturating adversarial + lazy R1 (averaged over a clip's frames) + lambda_reg *
L_reg on three adjacent frames (paper eq. 4, appendix A; ``reg_form``, gendef.generator.losses). The
last ToOut of G_d starts as ``model.deformation_init`` says ("zero": at step 0 every frame
equals the canonical image). Clip times follow ``time_sampling`` (gendef.data.times).
Paper ablations: ``freeze_canonical=true`` ('pt. then fix'), ``lambda_reg=0`` ('w/o L_reg'),
``from_scratch=true`` ('w/o pt.'), ``model.deformation_init=xavier|none`` (Table A1),
``model.canonical_feature_layer=N`` (Table 3). ``retime_motion=true`` takes the motion code's time
constants from this config instead of stage 1's (train/README 11: a 256-frame clock on 32-frame videos).
``d_warmup_kimg`` trains D alone first, so G_d's first gradients come from a D that already knows real
clips move.
"""
from __future__ import annotations

import json
import math
import sys
from contextlib import contextmanager
from pathlib import Path

import torch

from train.batches import sample_clip_times, sample_generator_times
from train.config import per_process_batch
from train.errors import TrainError
from train.run import Run, run_stage


def main(argv=None) -> int:
    return run_stage(argv, "finetune", __doc__.splitlines()[0], train)


def load_stage1(cfg: dict, device):
    """GenDeF (from_pretrained) and the stage-1 D weights, loaded into a video-mode D."""
    from safetensors.torch import load_file

    from gendef import GenDeF
    from gendef.errors import CheckpointError
    from gendef.generator.networks.discriminator import VIDEO_ONLY_PREFIXES, Discriminator

    init = Path(cfg["init"])
    try:
        G = GenDeF.from_pretrained(str(init))
    except CheckpointError as e:
        raise TrainError(f"init: {e}") from None
    saved = json.loads((init / "config.json").read_text()) if (init / "config.json").is_file() else {}
    differ = {k: v for k, v in cfg["model"].items() if saved and saved.get(k) != v}
    retime = {k: differ.pop(k) for k in MOTION_TIME_KEYS if k in differ} if cfg["retime_motion"] else {}
    retime.update({k: differ.pop(k) for k in WEIGHTLESS_KEYS if k in differ})
    if differ:
        print(f"note: stage 2 keeps the network settings of {init}/config.json; ignoring model={differ}")
    if cfg["init_weights"] == "raw":
        load_raw_generator(G, init)
    if retime:
        G = retimed_motion(G, saved, retime)
    if cfg["reset_deformation"]:
        with seeded(cfg):  # a random (xavier) restart drawn from the run's seed
            G.deformation.reset_output()  # as deformation_init says (Table A1); "zero": frames = canonical
    disc_cfg = {"resolution": G.resolution}
    if (init / "discriminator_config.json").is_file():
        disc_cfg.update(json.loads((init / "discriminator_config.json").read_text()))
    disc_cfg.update(cfg["disc"])
    disc_cfg["num_frames"] = int(cfg["clip_frames"])
    D = Discriminator(**disc_cfg)
    d_file = init / "discriminator.safetensors"
    if d_file.is_file():
        missing, unexpected = D.load_state_dict(load_file(str(d_file)), strict=False)
        # Only the video-specific layers (time conditioning, video head) may be new.
        bad = [k for k in missing + unexpected if not k.startswith(VIDEO_ONLY_PREFIXES)]
        if bad:
            raise TrainError(f"init: {d_file} does not match the discriminator config ({bad[:3]})")
        if cfg["video_head_init"] == "image_row":  # stage 1 never trains the video head (image mode)
            init_video_head_from_image(D)
    else:
        print(f"warning: {d_file} not found; stage 2 starts with a fresh discriminator")
    return G.train().to(device), D.to(device), disc_cfg


MOTION_TIME_KEYS = ("time_min_period", "time_max_period", "motion_anchor_spacing")
# Stage 2 always takes these from its own config: no weight depends on them (deformation_init only says how
# reset_output starts the last ToOut; zero <-> xavier keep its shape, "none" does not and is refused; warp_padding
# and warp_interpolation only say how the warp samples the canonical image).
WEIGHTLESS_KEYS = ("field_reference_time", "deformation_init", "warp_padding", "warp_interpolation")


def retimed_motion(G, saved: dict, retime: dict):
    """``retime_motion``: G rebuilt with stage 2's motion time constants, every weight kept. They set
    only the motion code's fixed buffers (frequencies, phase scales) and anchor spacing, which stage 1
    never trains; with 32-frame videos a 256-frame period leaves u_t nearly constant (train/README 11).
    The weightless keys (``field_reference_time``) are rebuilt the same way, with or without retime_motion."""
    from gendef import GenDeF

    if set(retime) - set(MOTION_TIME_KEYS + WEIGHTLESS_KEYS):
        raise TrainError(f"retime_motion changes only {', '.join(MOTION_TIME_KEYS + WEIGHTLESS_KEYS)}, got {sorted(retime)}")
    print(f"note: stage 2 uses model={retime} (stage 1: { {k: saved.get(k) for k in retime} })")
    new = GenDeF(**{**saved, **retime})
    fixed = {n for n, _ in new.motion.named_buffers(prefix="motion")}
    missing, unexpected = new.load_state_dict({k: v for k, v in G.state_dict().items() if k not in fixed}, strict=False)
    if unexpected or set(missing) != fixed:
        raise TrainError(f"retime_motion: weights do not match ({sorted(set(missing) - fixed)[:3]}, {unexpected[:3]})")
    return new.train(G.training)


def load_raw_generator(G, init: Path) -> None:
    """Official stage 2 (training_loop.py, resume branch) starts G -- and G_ema, a copy of it -- from
    stage 1's raw G, not from its EMA; the export keeps the raw weights in ``RAW_GENERATOR``."""
    from safetensors.torch import load_file

    from train.checkpoint import RAW_GENERATOR

    f = init / RAW_GENERATOR
    if not f.is_file():
        raise TrainError(f"init: {f} not found (init_weights=raw needs a stage-1 export from this version; or init_weights=ema)")
    try:
        G.load_state_dict(load_file(str(f)), strict=True)
    except RuntimeError as e:
        raise TrainError(f"init: {f} does not match {init}/config.json ({str(e).splitlines()[0]})") from None


def init_video_head_from_image(D) -> None:
    """Official stage 2 (training_loop.py, resume branch): the new projection head starts with every
    row equal to stage 1's output row, so at step 0 logit = out(h) x sum(cmap) / sqrt(d)."""
    with torch.no_grad():
        D.out_video.weight.copy_(D.out.weight.expand_as(D.out_video.weight))
        D.out_video.bias.copy_(D.out.bias.expand_as(D.out_video.bias))


def build_from_scratch(cfg: dict, model, device):
    """Table 4's "w/o pt.": stage 2 with freshly initialised G_c, G_d and D (no stage 1)."""
    from gendef import GenDeF
    from gendef.generator.networks.discriminator import Discriminator

    if cfg["init"]:
        print("note: from_scratch=true: init is not used")
    G = GenDeF(model)  # the model section, checked once at the start
    disc_cfg = {"resolution": G.resolution, **cfg["disc"], "num_frames": int(cfg["clip_frames"])}
    return G.train().to(device), Discriminator(**disc_cfg).to(device), disc_cfg


def generator_times(cfg: dict, dataset, b: int, device) -> torch.Tensor:
    """Times of b generated clips: official StyleGAN-V sampling, or ours before issue 11 ("uniform")."""
    k, max_dist = int(cfg["clip_frames"]), int(cfg["max_dist"])
    if cfg["time_sampling"] == "uniform":
        return sample_clip_times(b, k, max_dist, int(cfg["gen_time_range"]), device)
    lengths = [v.length for v in dataset.videos]
    return sample_generator_times(b, k, max_dist, lengths, int(cfg["max_num_frames"]), device)


@contextmanager
def seeded(cfg: dict, device=None):
    """Random draws from the run's seed, leaving the run's own random stream as it was."""
    with torch.random.fork_rng(devices=[device] if device is not None and device.type == "cuda" else []):
        torch.manual_seed(int(cfg["seed"]))
        yield


def drift_start(G, cfg: dict, batch: int, draw_times) -> None:
    """``drift_start_steps``: G_d fitted to a coherent drift before the adversarial steps (train/drift_start.py),
    ``batch`` clips a step (this process's share), from the run's seed."""
    from train.drift_start import fit_drift

    with seeded(cfg, G.device):
        fit_drift(G, int(cfg["drift_start_steps"]), float(cfg["drift_start_speed"]), batch,
                  draw_times, lr=float(cfg["lr"]) * float(cfg["lr_deformation_mult"]),
                  profile=cfg["drift_start_profile"])


def train(run: Run) -> None:
    from gendef.generator import losses
    from gendef.data import ClipDataset

    cfg, dev = run.cfg, run.device
    G, D, disc_cfg = build_from_scratch(cfg, run.settings.model, dev) if cfg["from_scratch"] else load_stage1(cfg, dev)
    if cfg["freeze_canonical"]:
        G.canonical.requires_grad_(False)
    dataset = run.dataset(ClipDataset, G.resolution, num_frames=int(cfg["clip_frames"]), max_dist=int(cfg["max_dist"]),
                          time_sampling=cfg["time_sampling"])
    if int(cfg["drift_start_steps"]) > 0 and not (cfg["resume"] or cfg["resume_pack"]):
        batch = per_process_batch(cfg, run.accelerator.num_processes)
        drift_start(G, cfg, batch, lambda b: generator_times(cfg, dataset, b, "cpu"))
    run.setup(G, D, disc_cfg, trained=G, video=True)
    data = run.loader(dataset)
    lam = float(cfg["lambda_reg"])
    lam_smooth = float(cfg["lambda_field_smooth"])

    def fake_clips(b: int, grad: bool):
        """Generated clips at sparse times, plus what L_reg needs (its frames reach 2 past the last time)."""
        times = generator_times(cfg, dataset, b, "cpu")  # its max on the host: no device sync
        z_c, z_d, noise = G.make_latents(b, int(math.ceil(float(times.max()))) + 3, device=dev)
        times = times.to(dev, non_blocking=True)
        with torch.set_grad_enabled(grad and not cfg["freeze_canonical"]):
            canon = G.canonical(z_c)
        out = G.generate(z_c, z_d, noise, times, canonical=canon)
        return out, times, (z_c, z_d, noise, canon)

    def draw(do_r1: bool):
        """Real clips vs generated clips for D."""
        real, real_t = next(data)
        real = real.to(dev, non_blocking=True).requires_grad_(do_r1)
        with torch.no_grad(), run.accelerator.autocast():
            out, fake_t, _ = fake_clips(real.shape[0], grad=False)
        return real, out["frames"], real_t.to(dev), fake_t

    def reg_loss(fake_t, z_c, z_d, noise, canon):
        """L_reg on three adjacent frames t, t+1, t+2, t one of the clip's own times (official code; paper eq. 4)."""
        col = int(torch.randint(0, fake_t.shape[1], ()))
        t = fake_t[:, col : col + 1]
        with run.accelerator.autocast():
            adj = G.generate(z_c, z_d, noise, t + torch.tensor([0.0, 1.0, 2.0], device=dev), canonical=canon)
        g = adj["grid_norm"].float()
        frame = adj["frames"][:, 2].float().detach()
        return losses.flow_regularization(g[:, 0], g[:, 1], g[:, 2], image=frame, form=cfg["reg_form"])

    def field_smoothness(out):
        """Guard: edge-aware smoothness of m = grid - identity itself (normalised units), frames as edges."""
        m = (out["grid_norm"].float() - G.base_grid).flatten(0, 1).permute(0, 3, 1, 2)
        return losses.edge_aware_smoothness(m, out["frames"].flatten(0, 1).float().detach())

    def g_loss(do_reg: bool):
        """Adversarial loss of G_c + G_d through the frozen D, plus lambda_reg * L_reg."""
        with run.accelerator.autocast():
            out, fake_t, latents = fake_clips(run.batch, grad=True)
            fake_logits = D(run.augment(out["frames"]), fake_t)
        loss_G = losses.g_nonsaturating(fake_logits.float())
        logs = {"total": loss_G, "loss/G": loss_G, "logits/fake": fake_logits.mean(), "loss/reg": None}
        if do_reg:
            logs["loss/reg"] = reg_loss(fake_t, *latents)
            logs["total"] = loss_G + lam * logs["loss/reg"] * int(cfg["reg_every"])
        if lam_smooth > 0:
            logs["loss/field_smooth"] = field_smoothness(out)
            logs["total"] = logs["total"] + lam_smooth * logs["loss/field_smooth"]
        return logs

    warmup_nimg = float(cfg["d_warmup_kimg"]) * 1000
    for step in run.steps():
        loss_D, r1, real_logits = run.discriminator_step(draw)
        do_reg = lam > 0 and step % int(cfg["reg_every"]) == 0
        if run.state["cur_nimg"] < warmup_nimg:  # D warm-up: G waits
            logs = {"loss/G": None, "loss/reg": None}
        else:
            logs = run.generator_step(lambda: g_loss(do_reg))
        run.end_step({**logs, "loss/D": loss_D, "loss/r1": r1, "logits/real": real_logits.mean()})
    run.finish()


if __name__ == "__main__":
    sys.exit(main())
