"""Studio latency: from pressing "apply" to a playable video, for 16 and 128 frames.

Runs the same callbacks the Gradio buttons call (model loading and sampling are
done beforehand and not timed), at the default model's resolution: the shipped
``checkpoints/default`` when present, else the untrained demo model (same size).
Each time covers the propagation plus writing every file the UI shows (result
mp4, original|result mp4, frames .npz, and for segment/track the extra files).

    python -m benchmarks.app_latency [--frames 16 128] [--repeats 3] [--checkpoint DIR | --resolution 256]

Run it from the repository root (it imports the studio package `app`, which is not installed).

``--resolution R`` times a narrow untrained model of that size instead (what
"apply" costs depends on the frame count and size only, not on the weights).

``--config train/configs/sky128.yaml`` times a randomly initialised model of that config's
architecture (sampling latency depends on the architecture, not on the weights) and adds two
"sample" rows: ``GenDeF.sample`` alone and the studio's Sample callback (sampling plus every view
it writes). Each cell gives wall time and, in brackets, the process CPU time, which other users of
a shared machine do not inflate (with OMP_NUM_THREADS=1 it is the time on one free core).
"""
import argparse
import os
import statistics
import time
from pathlib import Path

import gradio as gr
import numpy as np

from app import scribble, segment, sources, stylize, track, views
from app.checkpoints import LoadedModel
from app.services import Services
from app.studio import Studio
from app.ui import TABS
from app.state import StudioState, cleanup


def _scribble_value(state):
    bg = views.display_canonical(state)
    h, w = bg.shape[:2]
    layer = np.zeros((h, w, 4), np.uint8)
    layer[h // 2 - h // 16 : h // 2 + h // 16, w // 4 : 3 * w // 4] = (255, 40, 40, 255)
    return {"background": bg, "layers": [layer], "composite": bg}


def _centre(state):
    h, w = views.display_canonical(state).shape[:2]
    return gr.SelectData(None, {"index": [w // 2, h // 2], "value": None})


def _timed(fn, repeats):
    """Median (wall, process CPU) seconds of ``fn()`` over ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def sample_rows(num_frames, repeats, checkpoint, studio):
    """The Sample button: the generator alone, then the whole callback (views included), on ``studio``'s services."""
    model = studio.services.model(checkpoint).model
    model.sample(seed=0, num_frames=2)  # warm-up
    gen = _timed(lambda: model.sample(seed=1, num_frames=num_frames), repeats)
    state = StudioState()
    cb = _timed(lambda: sources.sample(state, checkpoint, 1, num_frames, 1.0, 16, studio=studio), repeats)
    cleanup(state)
    return [("sample: GenDeF.sample (generator only)", gen), ("sample: studio callback (generator + views)", cb)]


def apply_actions(state):
    """{name: callable}: the studio's "apply" buttons on a loaded ``state``, as the UI calls them."""
    look = stylize.look_names()[0]
    return {
        "scribble": lambda: scribble.apply_scribble(state, _scribble_value(state)),
        f"look ({look})": lambda: stylize.apply_look(state, look, 1.0),
        "segment (GrabCut click + propagate)": lambda: (
            segment.segment_clear(state),
            segment.segment_click(state, "positive", segment.SEG_GRABCUT, _centre(state)),
            segment.apply_segment(state),
        ),
        "track (1 click)": lambda: (track.track_clear(state, track.TRACK_ON_CANONICAL), track.track_click(state, track.TRACK_ON_CANONICAL, _centre(state))),
    }


def run(num_frames, repeats, checkpoint, studio):
    state = sources.sample(StudioState(), checkpoint, 0, num_frames, 1.0, 16, studio=studio)["state"]
    actions = apply_actions(state)
    rows = []
    for name, fn in actions.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        rows.append((name, statistics.median(times)))
    size = state.video.frame_size
    cleanup(state)
    return size, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[16, 128])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--resolution", type=int, default=None)
    ap.add_argument("--config", default=None, help="time a random model of this training config's architecture")
    ap.add_argument("--sample-only", action="store_true", help="only the sample rows (with --config)")
    args = ap.parse_args()
    if args.config:
        return main_config(args)
    studio = Studio(Services(), TABS)  # the benchmark's one Services: the model loads once
    if args.resolution:
        import torch

        from gendef import GenDeF

        torch.manual_seed(0)
        narrow = GenDeF(resolution=args.resolution, channel_base=1024, channel_max=32, deformation_channel_base=512, deformation_channel_max=16).eval()
        args.checkpoint = f"narrow-untrained-{args.resolution}"
        studio.services.set_model(LoadedModel(narrow, args.checkpoint, untrained=True))
    loaded = studio.services.model(args.checkpoint)
    label = loaded.checkpoint if not loaded.untrained or args.resolution else "untrained demo model"
    results = {n: run(n, args.repeats, args.checkpoint, studio) for n in args.frames}
    size = next(iter(results.values()))[0]
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"Apply -> playable video, {label}, {size[1]}x{size[0]} frames, median of {args.repeats}, OMP_NUM_THREADS={threads}\n")
    print("| action | " + " | ".join(f"{n} frames" for n in args.frames) + " |")
    print("|---|" + "---:|" * len(args.frames))
    names = [name for name, _ in next(iter(results.values()))[1]]
    for i, name in enumerate(names):
        print(f"| {name} | " + " | ".join(f"{results[n][1][i][1]:.2f} s" for n in args.frames) + " |")


def main_config(args):
    import torch

    from gendef import GenDeF
    from train.config import load_config

    torch.manual_seed(0)
    model = GenDeF(**load_config(args.config)["model"]).eval()
    args.checkpoint = f"untrained-{Path(args.config).stem}"
    studio = Studio(Services(), TABS)
    studio.services.set_model(LoadedModel(model, args.checkpoint, untrained=True))
    cells = {}
    for n in args.frames:
        rows = sample_rows(n, args.repeats, args.checkpoint, studio)
        if not args.sample_only:
            size, edits = run(n, args.repeats, args.checkpoint, studio)
            rows += [(name, (t, float("nan"))) for name, t in edits]
        cells[n] = rows
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"{args.checkpoint} ({model.resolution} px, {model.num_parameters() / 1e6:.2f} M parameters, random weights), "
          f"median of {args.repeats}, torch threads {torch.get_num_threads()} (OMP_NUM_THREADS={threads})\n")
    print("| action | " + " | ".join(f"{n} frames: wall (CPU)" for n in args.frames) + " |")
    print("|---|" + "---:|" * len(args.frames))
    for i, (name, _) in enumerate(cells[args.frames[0]]):
        print(f"| {name} | " + " | ".join(_cell(*cells[n][i][1]) for n in args.frames) + " |")


def _cell(wall, cpu):
    return f"{wall:.2f} s" if cpu != cpu else f"{wall:.2f} s ({cpu:.2f} s)"


if __name__ == "__main__":
    main()
