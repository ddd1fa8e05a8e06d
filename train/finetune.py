"""Stage 2: fine-tune G_c + G_d + a video-mode D on sparse 3-frame clips.

    accelerate launch train/finetune.py --config train/configs/sky256.yaml data=... output_dir=... init=<stage-1 output>

Loss: non-saturating adversarial + lazy R1 + lambda_reg * L_reg, where L_reg is the
edge-aware smoothness of the change of flow between frames t-1, t, t+1 (paper eq. 4,
appendix A). The last ToOut of G_d starts at zero, so at step 0 every frame equals the
canonical image. ``freeze_canonical=true`` is the paper's 'pt. then fix' ablation and
``lambda_reg=0`` its 'w/o L_reg' one.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train import common  # noqa: E402
from train.pretrain import parse  # noqa: E402


def main(argv=None) -> int:
    cfg = parse(argv, "finetune")
    run = common.Run(cfg, "finetune")
    try:
        return train(run)
    finally:
        run.close()


def load_stage1(cfg: dict, device):
    """GenDeF (from_pretrained) and the stage-1 D weights, loaded into a video-mode D."""
    from safetensors.torch import load_file

    from gendef import GenDeF
    from gendef.model import CheckpointError
    from gendef.models.discriminator import Discriminator

    init = Path(cfg["init"])
    try:
        G = GenDeF.from_pretrained(str(init))
    except CheckpointError as e:
        common.fail(f"init: {e}")
    saved = json.loads((init / "config.json").read_text()) if (init / "config.json").is_file() else {}
    differ = {k: v for k, v in cfg["model"].items() if saved and saved.get(k) != v}
    if differ:
        print(f"note: stage 2 keeps the network settings of {init}/config.json; ignoring model={differ}")
    if cfg["reset_deformation"]:
        last = G.deformation.to_outs[-1]
        with torch.no_grad():
            last.conv.weight.zero_()
            last.bias.zero_()
    disc_cfg = {"resolution": G.resolution}
    if (init / "discriminator_config.json").is_file():
        disc_cfg.update(json.loads((init / "discriminator_config.json").read_text()))
    disc_cfg.update(cfg["disc"])
    disc_cfg["num_frames"] = int(cfg["clip_frames"])
    D = Discriminator(**disc_cfg)
    d_file = init / "discriminator.safetensors"
    if d_file.is_file():
        missing, unexpected = D.load_state_dict(load_file(str(d_file)), strict=False)
        # Only the video-specific layers (frame fusion, time conditioning) may be new.
        bad = [k for k in missing + unexpected if not k.startswith(("merge.", "time_mlp."))]
        if bad:
            common.fail(f"init: {d_file} does not match the discriminator config ({bad[:3]})")
    else:
        print(f"warning: {d_file} not found; stage 2 starts with a fresh discriminator")
    return G.train().to(device), D.to(device), disc_cfg


def train(run) -> int:
    from gendef import losses
    from gendef.data import ClipDataset

    cfg, acc = run.cfg, run.accelerator
    G, D, disc_cfg = load_stage1(cfg, acc.device)
    if cfg["freeze_canonical"]:
        G.canonical.requires_grad_(False)
    dataset = run.dataset(ClipDataset, G.resolution, num_frames=int(cfg["clip_frames"]), max_dist=int(cfg["max_dist"]))

    opt_G, opt_D = run.optimizers(G.parameters(), D.parameters())
    ema = common.EMA(G)
    modules = {"G": G, "D": D, "G_ema": ema.model}
    state = run.resume(modules, [G, D, ema.model])
    data = run.loader(dataset, state["step"])
    gamma, interval = float(cfg["r1_gamma"]), int(cfg["r1_interval"])
    lam, time_range = float(cfg["lambda_reg"]), int(cfg["gen_time_range"])
    k, max_dist = int(cfg["clip_frames"]), int(cfg["max_dist"])
    bar = run.progress(state)

    def fake_clips(b: int, grad: bool):
        """Generated clips at sparse times, plus what L_reg needs."""
        z_c, z_d, noise = G.make_latents(b, time_range + 1, device=acc.device)
        times = common.sample_clip_times(b, k, max_dist, time_range, acc.device)
        with torch.set_grad_enabled(grad and not cfg["freeze_canonical"]):
            canon = G.canonical(z_c)
        out = G.generate(z_c, z_d, noise, times, canonical=canon)
        return out, times, (z_c, z_d, noise, canon)

    while run.should_continue(state):
        t0 = time.time()
        p = run.ada.current
        # --- D: real clips vs generated clips, lazy R1 on reals
        def draw(do_r1):
            real, real_t = next(data)
            real = real.to(acc.device, non_blocking=True).requires_grad_(do_r1)
            with torch.no_grad(), acc.autocast():
                out, fake_t, _ = fake_clips(real.shape[0], grad=False)
            return real, out["frames"], real_t.to(acc.device), fake_t

        loss_D, r1, real_logits = common.discriminator_step(run, D, opt_D, state, draw, p, gamma, interval)

        # --- G_c + G_d: adversarial + lambda_reg * L_reg on three adjacent frames
        do_reg = lam > 0 and state["step"] % int(cfg["reg_every"]) == 0
        D.requires_grad_(False)
        opt_G.zero_grad(set_to_none=True)
        loss_reg = None
        for _ in range(cfg["grad_accum"]):
            with acc.autocast():
                out, fake_t, (z_c, z_d, noise, canon) = fake_clips(run.batch, grad=True)
                fake_logits = D(common.augment(out["frames"], p), fake_t)
            loss_G = losses.g_nonsaturating(fake_logits.float())
            total = loss_G
            if do_reg:
                t = torch.randint(1, max(time_range - 1, 2), (run.batch, 1), device=acc.device).float()
                with acc.autocast():
                    adj = G.generate(z_c, z_d, noise, t + torch.tensor([-1.0, 0.0, 1.0], device=acc.device), canonical=canon)
                g = adj["grid_px"].float()
                loss_reg = losses.flow_regularization(g[:, 0], g[:, 1], g[:, 2], image=((adj["frames"][:, 1].float() + 1) / 2).detach())
                total = total + lam * loss_reg * int(cfg["reg_every"])
            acc.backward(total / cfg["grad_accum"])
        D.requires_grad_(True)
        run.check_finite(state, loss_G=loss_G, loss_reg=loss_reg)
        common.sync_gradients(G, acc)
        opt_G.step()

        run.end_step(
            state, ema, G, bar, t0,
            {"loss/G": loss_G, "loss/D": loss_D, "loss/r1": r1, "loss/reg": loss_reg,
             "logits/real": real_logits.mean(), "logits/fake": fake_logits.mean()},
        )
        run.periodic(state, modules, ema.model, video=True)
    run.finish(state, modules, ema.model, D, disc_cfg, video=True)
    return 4 if run.push_failed else 0


if __name__ == "__main__":
    sys.exit(main())
