"""End to end in a real headless Chromium: sample, scribble, apply, track, screenshot.

The app runs as ``python app.py`` in a subprocess on a free localhost port with a
tiny random checkpoint; Playwright drives Debian's chromium. The produced frames
are fetched from the page's own download links and checked against a
CanonicalVideo sampled here from the same checkpoint.
"""
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "ci-artifacts"
SEED = 3
from tests.conftest import TINY_GENDEF as TINY  # noqa: E402

sync_api = pytest.importorskip("playwright.sync_api")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Tiny random GenDeF whose last block is perturbed so the frames really move."""
    import torch

    from gendef import GenDeF

    torch.manual_seed(0)
    model = GenDeF(**TINY)
    with torch.no_grad():
        last = model.deformation.to_outs[-1]
        last.conv.weight.normal_(0, 0.05)
        last.bias.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0]))
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    env.pop("SPACE_ID", None)
    env.pop("GRADIO_SERVER_NAME", None)
    log = open(tmp_path_factory.mktemp("log") / "server.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--checkpoint", str(checkpoint)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"app.py exited with {proc.returncode}:\n{log.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("app.py did not start within 120 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        pg = browser.new_page(viewport={"width": 1400, "height": 1100})
        pg.set_default_timeout(90_000)
        pg.goto(server)
        yield pg
        browser.close()


@pytest.fixture(scope="module")
def reference(checkpoint):
    """What the page must show: the same checkpoint sampled here."""
    from gendef import GenDeF

    return GenDeF.from_pretrained(str(checkpoint)).sample(seed=SEED, num_frames=16, fps=16.0)


def _download(page, name_part: str, selector: str = "#result-files", suffix: str = "") -> bytes:
    links = [a.get_attribute("href") for a in page.locator(f"{selector} a").all()]
    hits = [h for h in links if h and name_part in h.rsplit("/", 1)[-1] and h.endswith(suffix)]
    assert hits, f"no {name_part} link among {links}"
    resp = page.request.get(hits[0])
    assert resp.ok, resp.status
    return resp.body()


def _wait_status(page, text: str, timeout=None):
    page.wait_for_function(
        "t => (document.querySelector('#status') || {}).innerText && document.querySelector('#status').innerText.includes(t)",
        arg=text,
        timeout=timeout,
    )


def _paint_band(page, editor, spacing=10):
    """Three horizontal brush strokes, ``spacing`` screen pixels apart, across the middle of the editor's canvas."""
    editor.scroll_into_view_if_needed()
    editor.locator("button[aria-label=Brush]").click()
    page.wait_for_timeout(300)
    box = editor.locator("canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    r = 0.25 * min(box["width"], box["height"])
    for dy in (-spacing, 0, spacing):
        page.mouse.move(cx - r, cy + dy)
        page.mouse.down()
        for i in range(1, 25):
            page.mouse.move(cx - r + 2 * r * i / 24, cy + dy)
        page.mouse.up()
    page.wait_for_timeout(300)


def test_sample_scribble_track_in_chromium(page, reference):
    try:
        _scenario(page, reference)
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "studio-failure.png"), full_page=True)
        raise


def _scenario(page, reference):
    from gendef.video.canonical_video import CanonicalVideo
    from gendef.imageutil import to_uint8

    # --- sample a video with a chosen seed -----------------------------------------------
    page.wait_for_selector("#canonical-view img")
    seed_box = page.locator("#seed input")
    seed_box.fill(str(SEED))
    seed_box.press("Tab")
    page.click("#sample-btn")
    _wait_status(page, f"seed {SEED}")

    # --- applying before drawing: a readable error toast, and the page keeps working ---------
    editor = page.locator("#scribble-editor")
    editor.scroll_into_view_if_needed()
    page.click("#apply-scribble-btn")
    page.get_by_text("Nothing drawn yet").first.wait_for()

    # --- scribble: a horizontal stroke across the middle of the canvas ------------------
    page.wait_for_timeout(500)
    _paint_band(page, editor, spacing=20)  # three overlapping strokes: a band a few canonical pixels thick
    page.click("#apply-scribble-btn")
    _wait_status(page, "Scribble applied")

    data = np.load(io.BytesIO(_download(page, "scribble-frames")), allow_pickle=False)
    original, edited = data["original"].astype(np.int16), data["edited"].astype(np.int16)  # uint8 frames
    assert np.abs(original - to_uint8(reference.frames())).max() <= 1

    from PIL import Image

    rgba = np.asarray(Image.open(io.BytesIO(_download(page, "scribble-rgba")))).astype(np.float32) / 255.0
    alpha = rgba[..., 3]
    hc, wc = reference.canvas_size
    assert alpha.shape == (hc, wc)
    painted = np.argwhere(alpha > 0.5)  # (y, x)
    assert len(painted) > 0
    # the stroke sits on the canvas' middle row, spanning roughly its middle half
    assert abs(painted[:, 0].mean() - (hc - 1) / 2) < 0.15 * hc
    assert painted[:, 1].min() < 0.4 * wc and painted[:, 1].max() > 0.6 * wc

    # frames change exactly where the grid carries the paint, and nowhere else
    support = reference.warp(alpha) > 0
    changed = np.abs(edited - original).max(-1) > 0
    assert changed.any()
    assert not (changed & ~support).any(), "pixels changed outside the propagated scribble"
    strong = reference.warp(alpha) > 0.9 * alpha.max()
    assert strong.sum() > 0 and changed[strong].mean() > 0.9
    # and the tracked scribble pixels land on changed pixels in every frame where they are visible
    ys, xs = np.nonzero(alpha >= 0.9 * alpha.max())
    pts = np.stack([xs, ys], -1)[:: max(1, len(xs) // 8)].astype(np.float32)
    pos, vis = reference.track(pts)
    h, w = reference.frame_size
    hits = [changed[t, int(round(y)), int(round(x))] for t in range(len(pos)) for (x, y), v in zip(pos[t], vis[t]) if v and 0 <= round(x) < w and 0 <= round(y) < h]
    assert hits and np.mean(hits) > 0.9

    # --- scribble on a frame: pick frame 5 with the slider, paint there, apply -----------------
    _paint_on_frame(page, editor, reference, frame=5)

    # --- track: click a point on the canonical image ---------------------------------------
    page.get_by_role("tab", name="Track").click()
    img = page.locator("#track-image img")
    img.wait_for()
    img.scroll_into_view_if_needed()
    ib = img.bounding_box()
    fx, fy = 0.4, 0.6
    page.mouse.click(ib["x"] + fx * ib["width"], ib["y"] + fy * ib["height"])
    _wait_status(page, "Tracking 1 point")
    clicked = json.loads(page.locator("#track-points textarea, #track-points input").first.input_value())
    assert len(clicked) == 1
    x, y = clicked[0]
    assert abs(x - (fx * wc - 0.5)) <= 1.0 and abs(y - (fy * hc - 0.5)) <= 1.0
    doc = json.loads(_download(page, "tracks-", "#result-files", ".json").decode())
    assert doc["num_points"] == 1 and doc["num_frames"] == reference.num_frames
    got = np.array([[p["x"], p["y"]] for p in doc["points"][0]["track"]], dtype=np.float64)
    got_vis = np.array([p["visible"] for p in doc["points"][0]["track"]])
    want, want_vis = reference.track([(x, y)])
    np.testing.assert_allclose(got, want[:, 0], atol=2e-3)
    np.testing.assert_array_equal(got_vis, want_vis[:, 0])
    assert "num_points" in page.locator("#track-json").inner_text()

    # --- export: the re-openable CanonicalVideo round-trips ------------------------------------
    page.click("#export-btn")
    page.wait_for_selector("#export-files a")
    exported = CanonicalVideo.load(io.BytesIO(_download(page, "canonical-video", "#export-files")))
    np.testing.assert_allclose(exported.grid, reference.grid, atol=1e-5)

    # --- segment the example video: one click (GrabCut offline), propagate, check the masks ----
    page.get_by_role("tab", name="Open .npz").click()
    page.click("#example-npz-btn")
    _wait_status(page, "Opened astronaut_pan.npz")
    example = CanonicalVideo.load(ROOT / "assets" / "examples" / "astronaut_pan.npz")
    page.get_by_role("tab", name="Segment").click()
    seg = page.locator("#segment-image img")
    seg.wait_for()
    seg.scroll_into_view_if_needed()
    sb = seg.bounding_box()
    page.mouse.click(sb["x"] + 0.5 * sb["width"], sb["y"] + 0.3 * sb["height"])  # the face
    page.get_by_text("mask covers").first.wait_for()
    page.click("#apply-segment-btn")
    _wait_status(page, "Mask propagated")
    with zipfile.ZipFile(io.BytesIO(_download(page, "masks", "#result-files", ".zip"))) as zf:
        names = sorted(zf.namelist())
        masks = np.stack([np.asarray(Image.open(io.BytesIO(zf.read(n)))) > 127 for n in names])
    assert masks.shape == (example.num_frames,) + example.frame_size
    assert 0.02 < masks.mean() < 0.6  # an object, not nothing or everything
    data = np.load(io.BytesIO(_download(page, "segment-frames")), allow_pickle=False)
    assert np.abs(data["original"].astype(np.int16) - to_uint8(example.frames())).max() <= 1
    tinted = np.abs(data["edited"].astype(np.int16) - data["original"].astype(np.int16)).max(-1) > 0
    assert not (tinted & ~masks).any() and tinted[masks].mean() > 0.9

    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(500)
    shot = ARTIFACTS / "studio.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def _paint_on_frame(page, editor, reference, frame):
    """Paint a band across the middle of frame ``frame``: it must land in canonical pixels that frame shows."""
    from PIL import Image

    page.locator("#scribble-on").get_by_label("a frame").check()
    editor.get_by_text("Paint on frame 0").wait_for()
    slider = page.locator("#scribble-frame input[type=number]")
    slider.fill(str(frame))
    slider.press("Enter")
    editor.get_by_text(f"Paint on frame {frame}").wait_for()  # the editor reloads with the frame as its background
    # Typing into the slider can fire more than one reload of the editor; a late one clears the paint
    # (apply then says "Nothing drawn yet"). Let the reloads settle, and paint once more if that happened.
    for attempt in range(2):
        page.wait_for_timeout(2500)
        _paint_band(page, editor)
        page.click("#apply-scribble-btn")
        try:
            _wait_status(page, f"Scribble on frame {frame} applied", timeout=45_000)
            break
        except sync_api.TimeoutError:
            if attempt:
                raise
            page.screenshot(path=str(ARTIFACTS / "studio-frame-paint-retry.png"), full_page=True)

    rgba = np.asarray(Image.open(io.BytesIO(_download(page, "scribble-rgba")))).astype(np.float32) / 255.0
    alpha = rgba[..., 3]
    h, w = reference.frame_size
    shown = reference.frame_edit_to_canonical(np.ones((h, w), np.float32), frame) > 0
    assert alpha.sum() > 0 and not (alpha[~shown] > 0).any(), "paint went to canonical pixels the frame does not show"
    on_frame = reference.warp(alpha)[frame]
    rows, cols = np.nonzero(on_frame > 0.5)
    assert len(rows) > 0
    assert abs(rows.mean() - (h - 1) / 2) < 0.15 * h  # the band sits on the frame's middle row ...
    assert cols.min() < 0.4 * w and cols.max() > 0.6 * w  # ... spanning its middle half
    data = np.load(io.BytesIO(_download(page, "scribble-frames")), allow_pickle=False)
    changed = np.abs(data["edited"].astype(np.int16) - data["original"].astype(np.int16)).max(-1) > 0
    assert changed[frame].any() and not (changed & ~(reference.warp(alpha) > 0)).any()
    page.locator("#scribble-on").get_by_label("canonical image").check()
    editor.get_by_text("Paint on the canonical image").wait_for()


def test_uploaded_clip_exports_at_its_own_size(page, tmp_path):
    """Issue 16: a clip decomposed at the working size comes back at the source's size."""
    import cv2
    from skimage import data

    from gendef.video.io import write_video
    from gendef.video.reader import read_video

    try:
        photo = cv2.resize(data.astronaut(), (300, 300), interpolation=cv2.INTER_AREA)
        clip = write_video(np.stack([photo[20 + t : 128 + t, 10 + 3 * t : 202 + 3 * t] for t in range(16)]), tmp_path / "pan192x108.mp4", fps=12)
        page.get_by_role("tab", name="Upload clip").click()
        page.set_input_files("#clip-file input[type=file]", str(clip))
        steps = page.locator("#clip-steps input[type=number]")
        steps.fill("10")
        steps.press("Enter")
        page.wait_for_timeout(500)
        page.click("#decompose-btn")
        _wait_status(page, "Decomposed pan192x108.mp4")
        assert "exports at 192x108" in page.locator("#status").inner_text()
        page.click("#export-btn")
        page.wait_for_selector("#export-files a")
        out = tmp_path / "exported.mp4"
        out.write_bytes(_download(page, "original", "#export-files", ".mp4"))
        frames, _ = read_video(out)
        assert frames.shape[1:3] == (108, 192)
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "studio-upload-failure.png"), full_page=True)
        raise
