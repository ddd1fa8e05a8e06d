"""Stage 1: train the canonical image generator G_c and an image-mode D on single frames.

    accelerate launch train/pretrain.py --config train/configs/sky256.yaml data=... output_dir=...

The output folder is a full GenDeF checkpoint (EMA weights, G_d untouched and
therefore still zero-initialised) plus ``discriminator.safetensors``; stage 2
starts from it with ``init=<this folder>``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train import common  # noqa: E402


def parse(argv, stage: str):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="YAML config (train/configs/*.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data=... output_dir=... max_steps=100")
    args = p.parse_args(argv)
    try:
        cfg = common.load_config(args.config, args.overrides, stage)
        common.validate_config(cfg, stage)
    except common.ConfigError as e:
        common.fail(str(e))
    return cfg


def main(argv=None) -> int:
    cfg = parse(argv, "pretrain")
    run = common.Run(cfg, "pretrain")
    try:
        return train(run)
    finally:
        run.close()


def train(run) -> int:
    from gendef import GenDeF, losses
    from gendef.data import FrameDataset
    from gendef.models.discriminator import Discriminator

    cfg, acc = run.cfg, run.accelerator
    torch.manual_seed(cfg["seed"])
    G = GenDeF(**cfg["model"]).to(acc.device)
    disc_cfg = {"resolution": G.resolution, **cfg["disc"]}
    D = Discriminator(**disc_cfg).to(acc.device)
    dataset = run.dataset(FrameDataset, G.resolution)

    opt_G, opt_D = run.optimizers(G.canonical.parameters(), D.parameters())
    ema = common.EMA(G)
    state = run.resume({"G": G, "D": D, "G_ema": ema.model}, [G, D, ema.model])
    data = run.loader(dataset, state["step"])
    gamma, interval = float(cfg["r1_gamma"]), int(cfg["r1_interval"])
    bar = run.progress(state)

    while run.should_continue(state):
        t0 = time.time()
        p = run.ada.current
        # --- D: logistic loss on real frames vs G_c samples, lazy R1 on reals
        def draw(do_r1):
            real = next(data).to(acc.device, non_blocking=True).requires_grad_(do_r1)
            with torch.no_grad(), acc.autocast():
                fake = G.canonical(torch.randn(real.shape[0], G.z_dim, device=acc.device))[0]
            return real, fake, None, None

        loss_D, r1, real_logits = common.discriminator_step(run, D, opt_D, state, draw, p, gamma, interval)

        # --- G_c: non-saturating loss through a frozen D
        D.requires_grad_(False)
        opt_G.zero_grad(set_to_none=True)
        for _ in range(cfg["grad_accum"]):
            with acc.autocast():
                fake = G.canonical(torch.randn(run.batch, G.z_dim, device=acc.device))[0]
                fake_logits = D(common.augment(fake, p))
            loss_G = losses.g_nonsaturating(fake_logits.float())
            acc.backward(loss_G / cfg["grad_accum"])
        D.requires_grad_(True)
        run.check_finite(state, loss_G=loss_G)
        common.sync_gradients(G.canonical, acc)
        opt_G.step()

        run.end_step(
            state, ema, G, bar, t0,
            {"loss/G": loss_G, "loss/D": loss_D, "loss/r1": r1,
             "logits/real": real_logits.mean(), "logits/fake": fake_logits.mean()},
        )
        run.periodic(state, {"G": G, "D": D, "G_ema": ema.model}, ema.model, video=False)
    run.finish(state, {"G": G, "D": D, "G_ema": ema.model}, ema.model, D, disc_cfg, video=False)
    return 4 if run.push_failed else 0


if __name__ == "__main__":
    sys.exit(main())
