"""Forward+backward cost of each canonical backbone: StyleGAN2 / StyleGAN3, with and without MTM.

python -m benchmarks.backbones [--configs 128] [--batch 2] [--repeat 5] [--device cpu|cuda]
                               [--impl both|fast|reference] [--full] [--threads 1]

Run it from the repository root (``-m``): the reference layers are the tests' oracle,
``tests/reference_layers.py``, imported as ``tests.reference_layers``.

Every (config, backbone, MTM, implementation) runs in its own fresh subprocess, one after
the other, so the numbers of one row never share an allocator or a cache with another:

- time: median of --repeat steps after one warm-up; on CPU the process's CPU time
  (``time.process_time``, robust to other jobs on a shared machine; with --threads 1 it is
  the wall time of an idle machine), on CUDA the wall time between synchronisations.
- peak memory: on CPU the growth of the process's peak resident set (``ru_maxrss``) from
  just before the first step (model, inputs and zeroed parameter gradients already
  allocated) to after the last step: what one forward+backward needs on top of the model.
  On CUDA ``torch.cuda.max_memory_allocated`` minus the allocation before the steps.

``--impl reference`` runs StyleGAN3 with the plain layers that the fast ones are tested
against (tests.reference_layers.reference_ops); ``--full`` also times G_c + G_d on a
clip (stage 2's generator). Prints a markdown table with ratios to StyleGAN2 of the same
config, measured in the same run.
"""
import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from gendef import GenDeF
try:
    from tests.reference_layers import reference_ops
except ModuleNotFoundError as e:  # run as a script: the repository root is not on the path
    if e.name != "tests":
        raise
    raise SystemExit(f"{e}: run it from the repository root as python -m benchmarks.backbones") from None

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    # tests/conftest.py and train/configs/tiny.yaml
    "tiny": dict(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32, mapping_layers=2,
                 canonical_feature_dim=8, deformation_channel_base=128, deformation_channel_max=16,
                 motion_noise_dim=8, motion_code_dim=8, time_num_freqs=4),
    # the paper's G_c width (StyleGAN3's 32768 / 512 x multiplier 0.5, as sky256.yaml) at 128 px
    "128": dict(resolution=128, z_dim=512, w_dim=512, channel_base=16384, channel_max=256, mapping_layers=2,
                canonical_feature_dim=32, deformation_channel_base=8192, deformation_channel_max=256),
    # the same at 256 px
    "256": dict(resolution=256, z_dim=512, w_dim=512, channel_base=16384, channel_max=256, mapping_layers=2,
                canonical_feature_dim=32, deformation_channel_base=8192, deformation_channel_max=256),
}
VARIANTS = [("stylegan2", False), ("stylegan3", False), ("stylegan3", True)]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _clock(device):
    return time.perf_counter() if device.type == "cuda" else time.process_time()


def _peak_bytes(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def measure(a) -> dict:
    """Child process: one configuration, returns time and peak memory of its steps."""
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    torch.manual_seed(0)
    m = GenDeF(**CONFIGS[a.config], canonical_backbone=a.backbone, mtm=a.mtm).to(device).train()
    z = torch.randn(a.batch, m.z_dim, device=device)
    latents = m.make_latents(a.batch, a.frames, device=device)
    times = torch.arange(a.frames, dtype=torch.float32, device=device)
    for p in m.parameters():  # gradients belong to the model, not to the step
        p.grad = torch.zeros_like(p)

    def step():
        if a.full:
            m.generate(*latents, times)["frames"].square().mean().backward()
        else:
            m.canonical(z)[0].square().mean().backward()

    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device) if device.type == "cuda" else _peak_bytes(device)
    elapsed = []
    for i in range(a.repeat + 1):
        _sync(device)
        t0 = _clock(device)
        step()
        _sync(device)
        if i:  # the first is a warm-up
            elapsed.append(_clock(device) - t0)
    return dict(params=m.num_parameters(), ms=1000 * statistics.median(elapsed), peak_mb=(_peak_bytes(device) - base) / 2**20)


def run_child(a, config, backbone, mtm, impl) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.backbones", "--child", "--config", config, "--backbone", backbone, "--impl", impl,
           "--batch", str(a.batch), "--frames", str(a.frames), "--repeat", str(a.repeat), "--device", a.device,
           "--threads", str(a.threads)] + (["--mtm"] if mtm else []) + (["--full"] if a.full else [])
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{config} {backbone} mtm={mtm} {impl} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="128")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--impl", default="both", choices=["both", "fast", "reference"])
    ap.add_argument("--full", action="store_true", help="G_c + G_d on a clip instead of G_c alone")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--backbone", help=argparse.SUPPRESS)
    ap.add_argument("--mtm", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        with reference_ops(a.impl == "reference"):
            print(json.dumps(measure(a)))
        return
    what = "G_c + G_d on a clip" if a.full else "G_c"
    clock = "wall" if a.device == "cuda" else "CPU time"
    gpu = f" ({torch.cuda.get_device_name()})" if a.device == "cuda" else ""
    print(f"{platform.machine()}, torch {torch.__version__}, {a.device}{gpu}, {a.threads} thread(s), batch {a.batch}: "
          f"{what} forward+backward, median of {a.repeat} ({clock}); peak = memory on top of the model, own process each")
    print("| config | backbone | MTM | layers | params (M) | peak MB | ms | peak / SG2 | time / SG2 |")
    print("|---|---|---|---|---|---:|---:|---:|---:|")
    impls = ["reference", "fast"] if a.impl == "both" else [a.impl]
    for config in a.configs.split(","):
        sg2 = None
        for backbone, mtm in VARIANTS:
            for impl in impls if backbone == "stylegan3" else ["fast"]:
                r = run_child(a, config, backbone, mtm, impl)
                sg2 = sg2 or r
                layers = impl if backbone == "stylegan3" else "-"
                print(f"| {config} | {backbone} | {'yes' if mtm else 'no'} | {layers} | {r['params'] / 1e6:.2f} | "
                      f"{r['peak_mb']:.0f} | {r['ms']:.0f} | {r['peak_mb'] / sg2['peak_mb']:.1f}x | {r['ms'] / sg2['ms']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
