"""Stage 1: train the canonical image generator G_c and an image-mode D on single frames.

    accelerate launch train/pretrain.py --config train/configs/sky256.yaml data=... output_dir=...

The output folder is a full GenDeF checkpoint (EMA weights, G_d untouched and
therefore still zero-initialised) plus ``discriminator.safetensors``; stage 2
starts from it with ``init=<this folder>``.
"""
from __future__ import annotations

import sys

import torch

from train.run import Run, run_stage


def main(argv=None) -> int:
    return run_stage(argv, "pretrain", __doc__.splitlines()[0], train)


def train(run: Run) -> None:
    from gendef import GenDeF
    from gendef.generator import losses
    from gendef.data import FrameDataset
    from gendef.generator.networks.discriminator import Discriminator

    cfg, dev = run.cfg, run.device
    torch.manual_seed(cfg["seed"])
    G = GenDeF(run.settings.model).to(dev)  # checked once, at the start
    disc_cfg = {"resolution": G.resolution, **cfg["disc"]}
    D = Discriminator(**disc_cfg).to(dev)
    dataset = run.dataset(FrameDataset, G.resolution, frame_draw=cfg["stage1_frames"])
    run.setup(G, D, disc_cfg, trained=G.canonical, video=False)
    data = run.loader(dataset)

    def draw(do_r1: bool):
        """Real frames vs G_c samples for D."""
        real = next(data).to(dev, non_blocking=True).requires_grad_(do_r1)
        with torch.no_grad(), run.accelerator.autocast():
            fake = G.canonical(torch.randn(real.shape[0], G.z_dim, device=dev))[0]
        return real, fake, None, None

    def g_loss():
        """Non-saturating loss of G_c samples through the frozen D."""
        with run.accelerator.autocast():
            fake = G.canonical(torch.randn(run.batch, G.z_dim, device=dev))[0]
            fake_logits = D(run.augment(fake))
        loss_G = losses.g_nonsaturating(fake_logits.float())
        return {"total": loss_G, "loss/G": loss_G, "logits/fake": fake_logits.mean()}

    for _ in run.steps():
        loss_D, r1, real_logits = run.discriminator_step(draw)
        logs = run.generator_step(g_loss)
        run.end_step({**logs, "loss/D": loss_D, "loss/r1": r1, "logits/real": real_logits.mean()})
    run.finish()


if __name__ == "__main__":
    sys.exit(main())
