"""``python -m gendef.metrics --checkpoint CKPT --data DATA --metrics fid,fvd16,fvd128``."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    from .evaluation import PROTOCOL

    p = argparse.ArgumentParser(prog="python -m gendef.metrics", description="FID / FVD of a GenDeF checkpoint against a video dataset (StyleGAN-V protocol by default).")
    p.add_argument("--checkpoint", required=True, help="GenDeF folder (config.json + model.safetensors) or hub id")
    p.add_argument("--data", required=True, help="dataset: folder/zip of frame folders, or folder of videos")
    p.add_argument("--metrics", default="fid,fvd16", help="comma list of fid, fvd16, fvd128")
    p.add_argument("--num-videos", type=int, default=PROTOCOL["num_videos"], help="videos per side for FVD (2048)")
    p.add_argument("--num-fid-frames", type=int, default=PROTOCOL["num_fid_frames"], help="frames per side for FID (50000)")
    p.add_argument("--batch-size", type=int, default=PROTOCOL["batch_size"])
    p.add_argument("--inception-weights", default=None, help="path/URL/hub id of torchvision inception_v3 weights (default: torchvision's)")
    p.add_argument("--i3d-weights", default=None, help="path/URL/hub id of InceptionI3d Kinetics-400 weights (needed for FVD)")
    p.add_argument("--inception-size", type=int, default=PROTOCOL["inception_size"])
    p.add_argument("--i3d-size", type=int, default=PROTOCOL["i3d_size"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--out", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    import torch

    from ..data import DatasetError
    from ..model import CheckpointError
    from .evaluation import evaluate
    from .weights import MetricsError

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        from .. import GenDeF

        model = GenDeF.from_pretrained(args.checkpoint).to(device)
        res = evaluate(
            model, args.data, args.metrics, num_videos=args.num_videos, num_fid_frames=args.num_fid_frames,
            batch_size=args.batch_size, inception=args.inception_weights, i3d=args.i3d_weights,
            inception_size=args.inception_size, i3d_size=args.i3d_size, seed=args.seed, device=device,
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
