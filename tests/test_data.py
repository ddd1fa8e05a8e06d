"""Datasets (frame folders, zip, video files), sparse clip sampling, skipping, prepare CLI."""
import logging
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gendef.data import ClipDataset, FrameDataset, resize_center_crop, sample_sparse_times, scan_videos
from gendef.errors import DatasetError
from gendef.data.prepare import main as prepare_main
from gendef.data.prepare import prepare_dataset
from gendef.video.io import write_video

R = 16


def frame(t: int, h: int = 24, w: int = 32) -> np.ndarray:
    """Frame t is a flat grey of value 8*t (+ a ramp), so a decoded frame reveals its index."""
    img = np.full((h, w, 3), 8 * t, np.uint8)
    img[..., 2] = np.linspace(0, 255, w).astype(np.uint8)[None, :]
    return img


def write_frame_videos(root, n_videos=3, n_frames=10):
    for v in range(n_videos):
        d = root / f"video{v}"
        d.mkdir(parents=True)
        for t in range(n_frames):
            Image.fromarray(frame(t)).save(d / f"{t:06d}.png")
    return root


def test_frame_folders_yield_resized_frames_in_range(tmp_path):
    root = write_frame_videos(tmp_path / "frames", n_videos=2, n_frames=5)
    ds = FrameDataset(root, R)
    assert len(ds) == 10 and len(ds.videos) == 2
    x = ds[7]  # video 1, frame 2
    assert x.shape == (3, R, R) and x.dtype == torch.float32
    expect = resize_center_crop(frame(2), R).astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), expect, atol=1e-6)
    assert x.min() >= -1 and x.max() <= 1


def test_resize_center_crop_keeps_the_centre():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, 10:30] = 255  # the central square
    out = resize_center_crop(img, 10)
    assert out.shape == (10, 10, 3)
    assert out.min() == 255


def test_clip_dataset_sparse_times_match_decoded_frames(tmp_path):
    root = write_frame_videos(tmp_path / "frames", n_videos=2, n_frames=20)
    ds = ClipDataset(root, R, num_frames=3, max_dist=8)
    for seed in range(5):
        clip, times = ds[(seed % 2, seed)]
        assert clip.shape == (3, 3, R, R)
        assert times[0] == 0 and torch.all(times[1:] > times[:-1]) and times[-1] <= 7
        grey = ((clip[:, 0, 0, 0] + 1) * 127.5).round()  # red channel = 8 * frame index
        np.testing.assert_allclose((grey - grey[0]).numpy(), 8 * times.numpy(), atol=1)
    a, ta = ds[(0, 123)]
    b, tb = ds[(0, 123)]
    assert torch.equal(a, b) and torch.equal(ta, tb)


def test_sparse_times_respect_max_dist():
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = sample_sparse_times(3, 100, 32, rng)
        assert t[0] == 0 and len(set(t.tolist())) == 3 and t[-1] < 32
    assert sample_sparse_times(3, 3, 32, rng).tolist() == [0, 1, 2]


def test_zip_and_video_files_read_like_folders(tmp_path):
    root = write_frame_videos(tmp_path / "frames", n_videos=2, n_frames=6)
    zpath = tmp_path / "data.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(root.rglob("*.png")):
            zf.write(f, f.relative_to(root).as_posix())
    zds = FrameDataset(zpath, R)
    fds = FrameDataset(root, R)
    assert len(zds) == len(fds) == 12
    assert torch.equal(zds[3], fds[3])
    vids = tmp_path / "videos"
    write_video(np.stack([frame(t, 32, 32) for t in range(6)]), vids / "a.mp4", fps=8)
    write_video(np.stack([frame(t, 32, 32) for t in range(5)]), vids / "b.gif", fps=8)
    vds = ClipDataset(vids, R, num_frames=3, max_dist=4)
    assert sorted(v.length for v in vds.videos) == [5, 6]
    clip, times = vds[(0, 1)]
    grey = ((clip[:, 0, 8, 8] + 1) * 127.5)
    np.testing.assert_allclose((grey - grey[0]).numpy(), 8 * times.numpy(), atol=4)  # lossy codec


def test_corrupt_media_skipped_and_counted(tmp_path, caplog):
    root = write_frame_videos(tmp_path / "d", n_videos=2, n_frames=4)
    (root / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    (root / "bad_frames").mkdir()
    (root / "bad_frames" / "000000.png").write_bytes(b"garbage")
    (root / "empty").mkdir()
    with caplog.at_level(logging.WARNING, logger="gendef.data"):
        videos, skipped = scan_videos(root)
        ds = FrameDataset(root, R)
    names = " ".join(skipped)
    assert len(videos) == 3 and "broken.mp4" in names and "empty" in names
    assert ds.num_skipped == 2  # broken.mp4 (cannot open) + empty folder
    assert any("broken.mp4" in r.getMessage() for r in caplog.records)
    bad_video = [v.name for v in ds.videos].index("bad_frames")
    x = ds[(int(ds._starts[bad_video]), 5)]  # garbage frame, found only when read -> another video
    assert x.shape == (3, R, R) and ds.num_skipped_at_runtime == 1 and ds.num_skipped == 3
    assert torch.isfinite(x).all()


def test_empty_and_too_short_datasets_fail_clearly(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no readable videos"):
        FrameDataset(tmp_path / "empty", R)
    with pytest.raises(DatasetError, match="no such file"):
        FrameDataset(tmp_path / "missing", R)
    short = write_frame_videos(tmp_path / "short", n_videos=2, n_frames=2)
    assert len(FrameDataset(short, R)) == 4
    with pytest.raises(DatasetError, match="at least 3 frames"):
        ClipDataset(short, R, num_frames=3)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DatasetError, match="folder or a .zip"):
        FrameDataset(tmp_path / "x.txt", R)


def test_prepare_videos_to_zip(tmp_path, capsys):
    src = tmp_path / "src"
    write_video(np.stack([frame(t, 48, 64) for t in range(7)]), src / "clip_a.mp4", fps=8)
    write_video(np.stack([frame(t, 48, 64) for t in range(4)]), src / "clip_b.gif", fps=8)
    (src / "clip_c.mp4").write_bytes(b"corrupt" * 100)
    counts = prepare_dataset(src, tmp_path / "out.zip", resolution=R, progress=False)
    assert counts == {"videos": 2, "frames": 11, "skipped": 1}
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        names = sorted(zf.namelist())
    assert names[0] == "clip_a/000000.png" and len(names) == 11
    ds = ClipDataset(tmp_path / "out.zip", R, num_frames=3, max_dist=4)
    assert len(ds) == 2 and ds[(0, 0)][0].shape == (3, 3, R, R)
    rc = prepare_main([str(src), str(tmp_path / "folder"), "--resolution", str(R), "--max-frames", "3"])
    assert rc == 0 and "wrote 2 videos, 6 frames" in capsys.readouterr().out
    assert len(list((tmp_path / "folder" / "clip_a").glob("*.png"))) == 3
    assert prepare_main([str(src), str(tmp_path / "out.zip"), "--resolution", str(R)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_video_file_seek_matches_sequential_decoding(tmp_path):
    from gendef.video.reader import read_clip
    from gendef.video.reader import read_video

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (40, 1, 1, 3), dtype=np.uint8).repeat(16, 1).repeat(16, 2)
    write_video(frames, tmp_path / "v.mp4", fps=25)
    for start in (0, 7, 23, 36):
        got = read_clip(str(tmp_path / "v.mp4"), start, 4)
        np.testing.assert_array_equal(got, read_video(tmp_path / "v.mp4", start, 4)[0])


_QUIET_BATCH = """
import sys, warnings, zipfile
from pathlib import Path
warnings.simplefilter("error")  # any warning (torch's "not writable" is a UserWarning) fails the draw
from gendef.data import ClipDataset, FrameDataset
from train.batches import infinite_loader
root = Path(sys.argv[1])
cfg = {"seed": 0, "grad_accum": 1, "num_workers": 0}
with zipfile.ZipFile(root.parent / "data.zip", "w") as zf:
    for f in sorted(root.rglob("*.png")):
        zf.write(f, f.relative_to(root).as_posix())
for data in (root, root.parent / "data.zip"):
    frames = next(infinite_loader(FrameDataset(data, 16), cfg, 4, 0, 0))  # 16 px frames, 16 px data
    clips, times = next(infinite_loader(ClipDataset(data, 16, num_frames=3, max_dist=4), cfg, 2, 0, 0))
    print(tuple(frames.shape), tuple(clips.shape))
"""


def test_a_training_batch_raises_no_warning(tmp_path):
    """Issue 27 item 5: PNG frames (folder and zip) decode into writable arrays, so torch.from_numpy does not
    warn. torch warns only once per process, so the batch is drawn in a fresh one with warnings as errors."""
    import os
    import subprocess
    import sys

    from gendef.video.io import read_image

    root = tmp_path / "frames"  # frames already at the training size: no resize copies them
    for v in range(2):
        (root / f"video{v}").mkdir(parents=True)
        for t in range(6):
            Image.fromarray(frame(t, R, R)).save(root / f"video{v}" / f"{t:06d}.png")
    assert read_image(root / "video0" / "000000.png").flags.writeable
    env = dict(os.environ, PYTHONWARNINGS="error")
    out = subprocess.run([sys.executable, "-c", _QUIET_BATCH, str(root)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "not writable" not in out.stderr and "Warning" not in out.stderr
    assert out.stdout.split("\n")[:2] == ["(4, 3, 16, 16) (2, 3, 3, 16, 16)"] * 2
