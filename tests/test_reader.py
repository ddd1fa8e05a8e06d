"""The one video reader: every frame of a clip OpenCV cuts short, sizes from the header before decoding,
quiet decoders, one line on failure."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gendef.errors import DecomposeError, VideoIOError
from gendef.video.reader import probe, read_video

ROOT = Path(__file__).resolve().parents[1]
imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")  # a core dependency: present wherever CI runs
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg(*args):
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True, timeout=120)


@pytest.fixture(scope="module")
def cut_short(tmp_path_factory):
    """30 frames of Cinepak in an AVI whose sound comes in one-sample packets: more than OpenCV's
    4096 read attempts of other streams' packets between two frames, so OpenCV stops after the
    first frame and calls it the end, while ffmpeg reads all 30."""
    path = tmp_path_factory.mktemp("clips") / "cut_short.avi"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=3", "-f", "lavfi",
            "-i", "sine=frequency=440:sample_rate=48000:samples_per_frame=1:duration=3",
            "-c:v", "cinepak", "-c:a", "pcm_s16le", path)
    return path


def _ffmpeg_frames(path):
    gen = imageio_ffmpeg.read_frames(str(path))
    w, h = next(gen)["size"]
    return np.stack([np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen])


def _opencv_count(path):
    import cv2

    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_a_clip_opencv_cuts_short_is_read_whole(cut_short):
    assert _opencv_count(cut_short) < 10  # the fixture bites: OpenCV alone loses most frames
    truth = _ffmpeg_frames(cut_short)
    assert len(truth) == 30
    info = probe(cut_short)
    assert (info.frames, info.height, info.width, info.fps) == (30, 48, 64, 10.0)
    frames, fps = read_video(cut_short)
    assert frames.shape == (30, 48, 64, 3) and fps == 10.0
    np.testing.assert_array_equal(frames, truth)
    part, _ = read_video(cut_short, start=22, num_frames=5)
    np.testing.assert_array_equal(part, truth[22:27])


def test_it_decomposes_at_a_start_only_ffmpeg_reaches(cut_short):
    from gendef.decomposition import decompose_file

    vid = decompose_file(cut_short, start=24, frames=4, size=32, steps=2, output_size=None)
    assert vid.num_frames == 4 and vid.metadata["start"] == 24
    with pytest.raises(DecomposeError, match=r"start 40 is past the last frame \(30 frames\)"):
        decompose_file(cut_short, start=40, frames=4, size=32, steps=1)


def test_decoded_size_is_checked_from_the_header_before_decoding(cut_short):
    with pytest.raises(VideoIOError, match=r"30 frames of 64x48 would take .* GiB decoded"):
        read_video(cut_short, max_bytes=30 * 64 * 48 * 3 - 1)
    assert read_video(cut_short, max_bytes=30 * 64 * 48 * 3)[0].shape[0] == 30
    small, _ = read_video(cut_short, num_frames=3, resize_to=(24, 32), dtype="float32")
    assert small.shape == (3, 24, 32, 3) and small.dtype == np.float32 and 0.0 <= small.min() <= small.max() <= 1.0


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    """3 frames of flat grey at 8000x8000: a few hundred KB on disk, 576 MB decoded."""
    path = tmp_path_factory.mktemp("clips") / "huge.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=8000x8000:rate=8:duration=0.375",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path)
    return path


_UNDER_LIMIT = r"""
import json, resource, sys
from gendef.decomposition import decompose_file
from gendef.errors import GenDeFError
if sys.argv[3] == "ffmpeg":  # as for a codec OpenCV lacks: ffmpeg decodes (and scales while decoding)
    import gendef.video.reader as reader
    reader._probe_opencv = lambda path: None
page = resource.getpagesize()
base = int(open("/proc/self/statm").read().split()[0]) * page
limit = base + int(1.5 * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    vid = decompose_file(sys.argv[1], frames=3, size=32, steps=1, output_size=sys.argv[2])
    out = {"ok": True, "grid": list(vid.grid.shape)}
except GenDeFError as e:
    out = {"ok": False, "error": str(e)}
out["peak_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
out["child_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # ffmpeg, the largest one
print(json.dumps(out))
"""


def _under_limit(path, output_size, decoder="opencv"):
    import json

    env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
    r = subprocess.run([sys.executable, "-c", _UNDER_LIMIT, str(path), output_size, decoder], capture_output=True,
                       text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_an_8000px_clip_is_refused_from_its_header_under_1_5_gib(huge):
    info = probe(huge)
    assert (info.height, info.width, info.frames) == (8000, 8000, 3)
    out = _under_limit(huge, "source")
    assert not out["ok"] and "full-size canonical" in out["error"] and "\n" not in out["error"]
    assert out["peak_growth_mb"] < 400  # nothing was decoded (3 frames are 576 MB)


def test_an_8000px_clip_decodes_scaled_down_under_1_5_gib(huge):
    out = _under_limit(huge, "working")
    assert out["ok"], out
    assert out["grid"][0] == 3 and max(out["grid"][1:3]) == 32
    assert out["peak_growth_mb"] < 1536


def test_an_8000px_clip_decodes_scaled_down_through_ffmpeg_under_1_5_gib(huge):
    out = _under_limit(huge, "working", decoder="ffmpeg")
    assert out["ok"], out
    assert out["grid"][0] == 3 and max(out["grid"][1:3]) == 32
    assert out["peak_growth_mb"] < 300  # ffmpeg scaled the frames (370 MB when Python scaled them, 200 MB here)
    assert out["peak_growth_mb"] + out["child_peak_mb"] < 1536


@pytest.fixture(scope="module")
def half_written(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2", "-c:v", "libx264", root / "full.mp4")
    (root / "half.mp4").write_bytes((root / "full.mp4").read_bytes()[:3000])  # no moov atom
    return root / "half.mp4"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gendef", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_decoders_are_quiet_and_the_error_is_one_line(half_written, tmp_path):
    r = _cli("decompose", half_written, "--out", tmp_path / "o.npz", "--quiet")
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "half.mp4" in lines[0], r.stderr
    loud = _cli("decompose", half_written, "--out", tmp_path / "o.npz", "--quiet", "--verbose")
    talk = loud.stderr.strip().splitlines()
    assert loud.returncode == 2 and len(talk) > 1 and talk[-1] == lines[0]  # the decoders talk when asked


def test_unreadable_and_unknown_files_are_one_line(tmp_path):
    bad = tmp_path / "noise.mp4"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(VideoIOError, match="cannot open video"):
        probe(bad)
    with pytest.raises(VideoIOError, match="unsupported file type"):
        probe(Path(__file__))
    with pytest.raises(VideoIOError, match="no such file"):
        read_video(tmp_path / "missing.mp4")


def test_rotation_metadata_is_honoured_by_both_decoders(tmp_path, capfd):
    from gendef.video.reader import _ffmpeg_frames

    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
            tmp_path / "plain.mp4")
    _ffmpeg("-display_rotation", "90", "-i", tmp_path / "plain.mp4", "-c", "copy", tmp_path / "rot.mp4")
    info = probe(tmp_path / "rot.mp4")
    assert (info.height, info.width, info.frames) == (64, 48, 10)
    rotated, _ = read_video(tmp_path / "rot.mp4")  # OpenCV
    plain, _ = read_video(tmp_path / "plain.mp4")
    np.testing.assert_array_equal(rotated, np.rot90(plain, 1, axes=(1, 2)))  # 90 degrees counter-clockwise
    np.testing.assert_array_equal(np.stack(list(_ffmpeg_frames(tmp_path / "rot.mp4"))), rotated)
    assert capfd.readouterr().err == ""  # and neither decoder said anything


_NO_FFMPEG_IMPORTS = r"""
import sys
sys.modules["imageio_ffmpeg"] = None  # as on a machine without imageio-ffmpeg
import gendef, gendef.cli, gendef.video.reader, gendef.video.io, gendef.data.datasets, gendef.data.prepare, gendef.decomposition
print("ok")
"""


def test_without_imageio_ffmpeg_everything_imports():
    r = subprocess.run([sys.executable, "-c", _NO_FFMPEG_IMPORTS], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_without_imageio_ffmpeg_opencv_reads_or_refuses_in_one_line(cut_short, tmp_path, monkeypatch):
    """OpenCV alone: a clip it reads whole reads as before; one it cuts short is refused naming the install,
    never returned shortened; writing an mp4 names the install too."""
    from gendef.video.io import write_video
    from gendef.video.reader import iter_frames

    plain = tmp_path / "plain.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", plain)
    with_ffmpeg, _ = read_video(plain)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    alone, fps = read_video(plain)
    assert alone.shape == (20, 48, 64, 3) and fps == 10.0
    np.testing.assert_array_equal(alone, with_ffmpeg)
    assert probe(cut_short).frames == 30  # OpenCV's header count; its reader stops after the first frame
    assert read_video(cut_short, num_frames=1)[0].shape == (1, 48, 64, 3)  # what OpenCV reaches is fine
    for read in (lambda: read_video(cut_short), lambda: read_video(cut_short, start=20, num_frames=4),
                 lambda: list(iter_frames(cut_short))):
        with pytest.raises(VideoIOError, match=r"OpenCV stopped after \d+ of the \d+ frames .*pip install imageio-ffmpeg") as e:
            read()
        assert "\n" not in str(e.value)
    with pytest.raises(VideoIOError, match="pip install imageio-ffmpeg"):
        write_video(alone, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
    assert write_video(alone, tmp_path / "out.gif").is_file()


_READ_QUIETLY = r"""
import sys
from pathlib import Path
from gendef.video.reader import set_verbose
set_verbose(sys.argv[2] == "verbose")
if sys.argv[2] == "quiet":  # the studio's probe too (importing the studio costs seconds: once)
    from app.sources import clip_length
    assert clip_length(Path(sys.argv[1])) == (30, 10.0)
from gendef.video.reader import read_video
assert read_video(sys.argv[1])[0].shape[0] == 30
"""


def test_the_studio_and_library_read_quietly_unless_verbose(cut_short):
    """OpenCV's own "[ WARN ] grabFrame packet read max attempts" (the cut-short clip) and ffmpeg stay off fds 1 and 2."""
    quiet = subprocess.run([sys.executable, "-c", _READ_QUIETLY, str(cut_short), "quiet"], capture_output=True,
                           text=True, timeout=120, cwd=ROOT)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == "", quiet.stderr[-2000:]
    loud = subprocess.run([sys.executable, "-c", _READ_QUIETLY, str(cut_short), "verbose"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert loud.returncode == 0 and "grabFrame" in loud.stderr, loud.stderr[-2000:]
