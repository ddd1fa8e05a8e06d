"""Forward+backward time of each canonical backbone (StyleGAN2 / StyleGAN3, with and without MTM).

python benchmarks/backbones.py [--configs tiny,256] [--batch 2] [--frames 3] [--repeat 3] [--device cpu|cuda]

Times one training-style step of G_c alone (image loss) and of the whole
generator (G_c + G_d on a 3-frame clip, as in stage 2), best of --repeat after a
warm-up. Prints a markdown table for the README.
"""
import argparse
import platform
import time

import torch

from gendef import GenDeF

CONFIGS = {
    # tests/conftest.py and train/configs/tiny.yaml
    "tiny": dict(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32, mapping_layers=2,
                 canonical_feature_dim=8, deformation_channel_base=128, deformation_channel_max=16,
                 motion_noise_dim=8, motion_code_dim=8, time_num_freqs=4),
    # paper scale: 256 px, G channel multiplier 0.5 of StyleGAN3's 32768 / 512
    "256": dict(resolution=256, z_dim=512, w_dim=512, channel_base=16384, channel_max=256, mapping_layers=2,
                canonical_feature_dim=32, deformation_channel_base=8192, deformation_channel_max=256),
}
VARIANTS = [("stylegan2", False), ("stylegan2", True), ("stylegan3", False), ("stylegan3", True)]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_of(fn, repeat, device):
    fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="tiny,256")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-full", action="store_true", help="time G_c only")
    a = ap.parse_args()
    device = torch.device(a.device)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {device}, "
          f"threads {torch.get_num_threads()}, batch {a.batch}, {a.frames} frames per clip")
    print("| config | G_c backbone | MTM | params (M) | G_c fwd+bwd (s) | G_c+G_d fwd+bwd (s) |")
    print("|---|---|---|---|---|---|")
    for name in a.configs.split(","):
        for backbone, mtm in VARIANTS:
            torch.manual_seed(0)
            m = GenDeF(**CONFIGS[name], canonical_backbone=backbone, mtm=mtm).to(device).train()
            z = torch.randn(a.batch, m.z_dim, device=device)

            def canonical_step():
                m.zero_grad(set_to_none=True)
                m.canonical(z)[0].square().mean().backward()

            latents = m.make_latents(a.batch, a.frames, device=device)
            times = torch.arange(a.frames, dtype=torch.float32, device=device)

            def full_step():
                m.zero_grad(set_to_none=True)
                m.generate(*latents, times)["frames"].square().mean().backward()

            tc = best_of(canonical_step, a.repeat, device)
            tf = float("nan") if a.skip_full else best_of(full_step, a.repeat, device)
            print(f"| {name} | {backbone} | {'yes' if mtm else 'no'} | {m.num_parameters() / 1e6:.2f} | {tc:.3f} | {tf:.3f} |", flush=True)
            del m


if __name__ == "__main__":
    main()
