"""The studio's shape: a tab is its module plus one line, the services are the app's own, and
two jobs running at once leave each other's settings alone."""
import asyncio
import re
import threading
import types
from dataclasses import dataclass, field

import gradio as gr
import numpy as np
import pytest

from app import sources, ui
from app.services import Services
from app.state import StudioState, TabPart
from app.studio import Studio


@dataclass
class TinyPart(TabPart):
    tiny_clicks: list = field(default_factory=list)


def _tiny_tab():
    """A whole tab: a Textbox that shows the loaded video's frame count, and a part of the session."""

    def build(studio):
        with gr.Tab("Tiny", id="tab-tiny"):
            box = gr.Textbox(label="Frames", elem_id="tiny-frames")
        studio.add(tiny_frames=box)

    def reset(state):
        return dict(tiny_frames=f"{state.video.num_frames} frames, {len(state.part(TinyPart).tiny_clicks)} clicks")

    return types.SimpleNamespace(__name__="tiny_tab", PANEL="edit", ON_LOAD=("tiny_frames",), build=build, reset=reset)


def _dependency(demo, elem_id):
    """The wired function and output components of the click on the button ``elem_id``."""
    cfg = demo.get_config_file()
    button = next(c["id"] for c in cfg["components"] if c.get("props", {}).get("elem_id") == elem_id)
    fn = next(f for f in demo.fns.values() if any(t[0] == button for t in f.targets))
    return fn


def _through_gradio(demo, fn, inputs):
    """What Gradio's own call of a wired function returns (it fills every parameter it sees)."""
    return asyncio.run(demo.call_function(fn, inputs))["prediction"]


def test_wired_callbacks_get_the_studio_from_the_binder_not_from_gradio():
    services = Services()
    services.set_stylizer(object(), "canny", True)
    demo = ui.build_demo("x", services)
    status = next(f for f in demo.fns.values() if f.name == "stylize_status")
    assert _through_gradio(demo, status, ["canny", True]) == "ControlNet (canny) pipeline preloaded."
    backend = next(f for f in demo.fns.values() if f.name == "default_segmenter")
    services.set_segmenter(object())
    assert _through_gradio(demo, backend, []) == "SAM (segment-anything)"


def test_a_tab_is_its_module_and_one_line():
    tiny = _tiny_tab()
    demo = ui.build_demo("some/ckpt", Services(), tabs=ui.TABS + (tiny,))
    cfg = demo.get_config_file()
    ids = [c.get("props", {}).get("elem_id") for c in cfg["components"]]
    assert "tiny-frames" in ids and ids.index("tiny-frames") > ids.index("track-image")  # built in the edit panel, after Track
    box = next(c for c in cfg["components"] if c.get("props", {}).get("elem_id") == "tiny-frames")

    opened = _dependency(demo, "example-npz-btn")  # a load callback wired by the Sources tab
    assert box["id"] in [o._id for o in opened.outputs]
    state = StudioState()
    state.part(TinyPart).tiny_clicks.append((1, 2))
    out = {c.elem_id: v for c, v in _through_gradio(demo, opened, [state]).items() if c.elem_id}
    assert out["tiny-frames"] == "24 frames, 0 clicks"  # its view reset, and its part of the session started afresh
    assert out["video-view"].endswith(".mp4") and out["scribble-on"] == "canonical image"

    plain = ui.build_demo("some/ckpt", Services())  # without the line, no trace of it
    assert "tiny-frames" not in [c.get("props", {}).get("elem_id") for c in plain.get_config_file()["components"]]
    assert len(plain.get_config_file()["components"]) < len(cfg["components"])


def test_a_direct_call_resets_the_tabs_of_its_studio():
    studio = Studio(Services(), ui.TABS + (_tiny_tab(),))
    out = sources.open_example(StudioState(), studio=studio)
    assert set(out) == set(studio.load_views) and out["tiny_frames"] == "24 frames, 0 clicks"
    broken = types.SimpleNamespace(__name__="broken", PANEL="edit", ON_LOAD=("a", "b"), reset=lambda state: dict(a=1))
    with pytest.raises(gr.Error, match="Internal error"):
        sources.open_example(StudioState(), studio=Studio(Services(), ui.TABS + (broken,)))


@pytest.fixture
def torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _second_checkpoint(tiny_checkpoint, tmp_path):
    import torch

    from gendef import GenDeF

    model = GenDeF.from_pretrained(str(tiny_checkpoint))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "other")
    return tmp_path / "other"


def _recorder(seen: list):
    import torch

    def progress(fraction=0.0, desc=""):
        seen.append(torch.get_num_threads())

    return progress


def test_two_jobs_at_once_keep_their_threads_and_models(tiny_checkpoint, tmp_path, torch_threads):
    from gendef import GenDeF

    services = Services(threads=2)
    services.start()
    studio = Studio(services, ui.TABS)
    other = _second_checkpoint(tiny_checkpoint, tmp_path)
    go, done = threading.Barrier(2), threading.Event()
    seen = {"decompose": [], "sample": []}
    out, errors = {}, []

    def decompose_job():
        try:
            go.wait()
            out["decompose"] = sources.decompose_upload(StudioState(), str(sources.EXAMPLE_CLIP), 16, 64, 0, 30,
                                                        progress=_recorder(seen["decompose"]), studio=studio)
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)
        finally:
            done.set()

    def sample_job():
        try:
            go.wait()
            runs = 0
            while not done.is_set() or runs < 2:  # sample the two checkpoints in turn while the other job runs
                ckpt = (tiny_checkpoint, other)[runs % 2]
                out[f"sample-{runs % 2}"] = sources.sample(StudioState(), str(ckpt), 4, 16, 1.0, 8,
                                                           progress=_recorder(seen["sample"]), studio=studio)
                runs += 1
        except Exception as e:
            errors.append(e)

    jobs = [threading.Thread(target=decompose_job), threading.Thread(target=sample_job)]
    for j in jobs:
        j.start()
    for j in jobs:
        j.join(timeout=600)
    assert not errors, errors
    assert len(seen["decompose"]) > 3 and set(seen["decompose"]) == {2}, seen["decompose"]
    assert len(seen["sample"]) > 3 and set(seen["sample"]) == {2}, seen["sample"]
    assert out["decompose"]["state"].video.num_frames == 16
    for i, ckpt in enumerate((tiny_checkpoint, other)):  # each job got its own model, and said so
        state = out[f"sample-{i}"]["state"]
        assert state.source.startswith(f"Sampled: {ckpt}") and str(ckpt) in out[f"sample-{i}"]["notice"]
        ref = GenDeF.from_pretrained(str(ckpt)).sample(seed=4, num_frames=16, fps=8)
        np.testing.assert_allclose(state.video.grid, ref.grid, atol=1e-5)
    assert services.model(str(tiny_checkpoint)) is not services.model(str(other))
    assert set(services._models) == {str(tiny_checkpoint), str(other)}


def test_studio_services_are_not_the_shared_ones(tiny_checkpoint):
    from app import checkpoints

    own = Services()
    sources.sample(StudioState(), str(tiny_checkpoint), 0, 16, 1.0, 8, studio=Studio(own, ui.TABS))
    assert str(tiny_checkpoint) in own._models
    served = Services(served=checkpoints.is_served("0.0.0.0"))
    assert served.public and not own.public and not served._models


def test_an_upload_is_probed_once_and_its_size_decided_once(monkeypatch):
    import gendef.video.fullsize as fullsize
    import gendef.video.reader as reader

    probes, decisions = [], []
    real_probe, real_resolve = reader.probe, fullsize.resolve_output_size

    def probe(path):
        probes.append(str(path))
        return real_probe(path)

    def resolve(choice, *args, **kwargs):
        if not re.fullmatch(r"\d+x\d+", str(choice)):  # "WxH" is a decided size, read back
            decisions.append(choice)
        return real_resolve(choice, *args, **kwargs)

    monkeypatch.setattr(reader, "probe", probe)
    monkeypatch.setattr(sources, "probe", probe)
    monkeypatch.setattr(fullsize, "resolve_output_size", resolve)
    state = sources.decompose_upload(StudioState(), str(sources.EXAMPLE_CLIP), 16, 64, 0, 2)["state"]
    assert state.video.frame_size == (64, 64)
    assert probes == [str(sources.EXAMPLE_CLIP)] and decisions == ["source"]
    probes.clear(), decisions.clear()
    sources.decompose_upload(StudioState(), str(sources.EXAMPLE_CLIP), 16, 64, 0, 2, sources.OUTPUT_720P)
    assert len(probes) == 1 and decisions == ["720p"]


def test_video_extensions_are_the_library_list():
    from gendef.video.io import VIDEO_EXTS

    assert sources.VIDEO_EXTS is VIDEO_EXTS and ".m4v" in VIDEO_EXTS
    demo = ui.build_demo("x", Services())
    clip = next(c for c in demo.get_config_file()["components"] if c.get("props", {}).get("elem_id") == "clip-file")
    assert clip["props"]["file_types"] == list(VIDEO_EXTS)
