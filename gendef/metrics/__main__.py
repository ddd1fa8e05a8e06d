"""``python -m gendef.metrics --checkpoint CKPT --data DATA --metrics fid50k_full,fvd2048_16f,fvd2048_128f``."""
from __future__ import annotations

import argparse
import json
import sys


EPILOG = """\
metrics (StyleGAN-V's protocols, comparable with GenDeF Table 1):
  fvd2048_16f               I3D, 2048 real vs 2048 generated clips of 16 consecutive frames
  fvd2048_128f              same with 128 consecutive frames
  fvd2048_128f_subsample8f  16 frames taken every 8th frame (spans 128)
  fid50k_full               Inception, every real frame vs 50k generated frames (frames 0-15 of each video)
  Reals: the first 2048 videos long enough for the clip, one clip each at a random start.
  Both sides are uint8 [0, 255]; the detectors rescale and resize internally.

TorchScript detectors (downloaded on first use into $GENDEF_CACHE/metrics/detectors, or
~/.cache/gendef/metrics/detectors; give a local path, an http(s):// or file:// URL, or a hub
file owner/repo/path.pt):
  --i3d-torchscript        StyleGAN-V's i3d_torchscript.pt, called as
                           net(videos_uint8[N,3,T,H,W], rescale=True, resize=True, return_features=True)
                           default %s  (env GENDEF_I3D_TORCHSCRIPT)
  --inception-torchscript  StyleGAN2-ADA's inception-2015-12-05.pt, called as
                           net(images_uint8[N,3,H,W], return_features=True)
                           default %s  (env GENDEF_INCEPTION_TORCHSCRIPT)

alternatives (no TorchScript file; NOT comparable with published numbers):
  fid    torchvision Inception-v3 (--inception-weights), --num-fid-frames random real frames
         vs one generated frame per video at a random time below 128
  fvdN   our I3D port from a pytorch-i3d state dict (--i3d-weights), N consecutive frames
"""


def main(argv=None) -> int:
    from .evaluation import PROTOCOL
    from .torchscript import I3D, INCEPTION

    p = argparse.ArgumentParser(prog="python -m gendef.metrics", formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="FID / FVD of a GenDeF checkpoint against a video dataset.",
                                epilog=EPILOG % (I3D.url, INCEPTION.url))
    p.add_argument("--checkpoint", required=True, help="GenDeF folder (config.json + model.safetensors) or hub id")
    p.add_argument("--data", required=True, help="dataset: folder/zip of frame folders, or folder of videos")
    p.add_argument("--metrics", default="fid50k_full,fvd2048_16f",
                   help="comma list (default fid50k_full,fvd2048_16f); see below")
    p.add_argument("--num-videos", type=int, default=PROTOCOL["num_videos"], help="clips per side for FVD (2048)")
    p.add_argument("--num-fid-frames", type=int, default=PROTOCOL["num_fid_frames"], help="generated frames for FID (50000)")
    p.add_argument("--i3d-torchscript", default=None, help="StyleGAN-V I3D TorchScript file: path, URL or hub file")
    p.add_argument("--inception-torchscript", default=None, help="StyleGAN2-ADA Inception TorchScript file: path, URL or hub file")
    p.add_argument("--batch-size", type=int, default=PROTOCOL["batch_size"])
    p.add_argument("--inception-weights", default=None, help="'fid' only: torchvision inception_v3 weights, path/URL/hub id")
    p.add_argument("--i3d-weights", default=None, help="'fvdN' only: InceptionI3d Kinetics-400 state dict, path/URL/hub id")
    p.add_argument("--inception-size", type=int, default=PROTOCOL["inception_size"])
    p.add_argument("--i3d-size", type=int, default=PROTOCOL["i3d_size"])
    p.add_argument("--chunk-frames", type=int, default=0,
                   help="real set: split videos into chunks of this many frames, as training did (official TaiChi/YTB: 512; 0 = off)")
    p.add_argument("--chunk-min-frames", type=int, default=128, help="real set: drop chunks shorter than this (128)")
    p.add_argument("--resize", default="crop", choices=("crop", "squash"),
                   help="real set: crop the short side (ours) or squash to a square (official; ytb256.yaml)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--out", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    import torch

    from ..errors import DatasetError
    from ..errors import CheckpointError
    from .evaluation import evaluate
    from ..errors import MetricsError

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        from .. import GenDeF

        model = GenDeF.from_pretrained(args.checkpoint).to(device)
        res = evaluate(
            model, args.data, args.metrics, num_videos=args.num_videos, num_fid_frames=args.num_fid_frames,
            batch_size=args.batch_size, inception=args.inception_weights, i3d=args.i3d_weights,
            inception_size=args.inception_size, i3d_size=args.i3d_size, seed=args.seed, device=device,
            inception_torchscript=args.inception_torchscript, i3d_torchscript=args.i3d_torchscript,
            data_options={"chunk": args.chunk_frames, "chunk_min": args.chunk_min_frames, "resize": args.resize},
        )
    except (MetricsError, DatasetError, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for k, v in res.items():
        print(f"{k}: {v:.4f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
