"""Fréchet distance against scipy, detector weight loading, FID/FVD end to end with
randomly initialised detectors of the real architectures, and the CLI."""
import json

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from torch import nn

from gendef.metrics import feature_stats, frechet_distance, frechet_distance_from_features
from gendef.errors import MetricsError
from gendef.metrics.i3d import I3DFeatures, InceptionI3d
from gendef.metrics.inception import InceptionFeatures, build_inception_v3
from gendef.metrics.weights import load_state_dict_file, resolve_weights

R = 16


def scipy_frechet(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def informative_(module):
    """Random init whose features do not collapse (default init shrinks activations to ~0)."""
    torch.manual_seed(0)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight)
    return module.eval()


def test_frechet_matches_scipy_and_is_zero_for_identical_sets():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 12))
    b = rng.normal(size=(150, 12)) @ rng.normal(size=(12, 12)) * 0.5 + 0.3
    mine = frechet_distance(*feature_stats(a), *feature_stats(b))
    ref = scipy_frechet(*feature_stats(a), *feature_stats(b))
    assert mine == pytest.approx(ref, rel=1e-6)
    assert frechet_distance_from_features(a, a) == pytest.approx(0.0, abs=1e-8)
    shift = np.full(12, 0.5)
    assert frechet_distance_from_features(a, a + shift) == pytest.approx(12 * 0.25, rel=1e-9)


def test_frechet_rank_deficient_covariance_matches_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 20))  # fewer samples than dimensions: singular covariances
    b = rng.normal(size=(6, 20)) + 1
    mine = frechet_distance_from_features(a, b)
    assert mine == pytest.approx(scipy_frechet(*feature_stats(a), *feature_stats(b)), rel=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        feature_stats(a[:1])


def test_i3d_weights_load_from_safetensors_and_torch_state_dict(tmp_path):
    from safetensors.torch import save_file

    net = informative_(InceptionI3d())
    sd = net.state_dict()
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "i3d.safetensors"))
    torch.save(sd, tmp_path / "i3d.pt")
    video = torch.rand(2, 8, 3, R, R)
    ref = I3DFeatures(net, size=32)(video)
    assert ref.shape == (2, 400)
    for f in ("i3d.safetensors", "i3d.pt"):
        det = I3DFeatures.from_weights(str(tmp_path / f), size=32)
        torch.testing.assert_close(det(video), ref)
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(MetricsError, match="not InceptionI3d weights"):
        I3DFeatures.from_weights(str(tmp_path / "other.pt"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(MetricsError, match="not a plain tensor state dict"):
        load_state_dict_file(tmp_path / "junk.pt")


def test_inception_weights_load_and_give_2048_features(tmp_path):
    net = informative_(build_inception_v3())
    torch.save(net.state_dict(), tmp_path / "inception.pt")
    det = InceptionFeatures.from_weights(str(tmp_path / "inception.pt"), size=75)
    x = torch.rand(3, 3, R, R)
    f = det(x)
    assert f.shape == (3, 2048) and torch.isfinite(f).all() and f.std() > 1e-3
    torch.testing.assert_close(f, InceptionFeatures(net, size=75)(x))


def test_resolve_weights_rejects_bad_sources(tmp_path):
    with pytest.raises(MetricsError, match="not a file, URL or hub id"):
        resolve_weights(str(tmp_path / "nothing.pt"))
    with pytest.raises(MetricsError, match="hub"):
        resolve_weights("owner/repo/weights.safetensors")  # offline: clear message, no traceback
    p = tmp_path / "w.safetensors"
    p.write_bytes(b"x")
    assert resolve_weights(str(p)) == p


@pytest.fixture
def frames_data(tmp_path):
    rng = np.random.default_rng(0)
    for v in range(3):
        d = tmp_path / "data" / f"v{v}"
        d.mkdir(parents=True)
        base = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
        for t in range(10):
            Image.fromarray(np.roll(base, t, axis=1)).save(d / f"{t:04d}.png")
    return tmp_path / "data"


def test_fid_fvd_end_to_end_with_random_detectors(tiny_model, frames_data):
    from gendef.metrics import evaluate

    inc = informative_(InceptionFeatures(size=75))
    i3d = I3DFeatures(informative_(InceptionI3d()), size=32)
    kw = dict(num_videos=6, num_fid_frames=12, batch_size=3, inception=inc, i3d=i3d)
    res = evaluate(tiny_model, frames_data, "fid,fvd8", **kw)
    assert set(res) == {"fid", "fvd8"}
    assert all(np.isfinite(v) and v > 0 for v in res.values())
    assert evaluate(tiny_model, frames_data, ["fvd8"], **kw)["fvd8"] == pytest.approx(res["fvd8"], rel=1e-9)
    with pytest.raises(MetricsError, match="FVD16 needs real videos of 16 frames"):
        evaluate(tiny_model, frames_data, ["fvd16"], **kw)
    with pytest.raises(MetricsError, match="unknown metric"):
        evaluate(tiny_model, frames_data, ["isd"], **kw)


def test_cli_runs_fvd_from_weight_files(tiny_checkpoint, frames_data, tmp_path, capsys):
    from safetensors.torch import save_file

    from gendef.metrics.__main__ import main

    net = informative_(InceptionI3d())
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "i3d.safetensors"))
    out = tmp_path / "res.json"
    args = ["--checkpoint", str(tiny_checkpoint), "--data", str(frames_data), "--num-videos", "4", "--batch-size", "4",
            "--i3d-size", "32", "--device", "cpu"]
    assert main(args + ["--metrics", "fvd8", "--i3d-weights", str(tmp_path / "i3d.safetensors"), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["fvd8"] > 0 and "fvd8:" in capsys.readouterr().out
    assert main(args + ["--metrics", "fvd8"]) == 2
    assert "FVD needs I3D weights" in capsys.readouterr().err
    assert main(args + ["--metrics", "fvd8", "--i3d-weights", str(tmp_path / "i3d.safetensors"), "--data", str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- StyleGAN-V protocols, TorchScript detectors
class TinyI3D(nn.Module):
    """Stand-in with the call signature of StyleGAN-V's i3d_torchscript.pt."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv3d(3, 8, (2, 3, 3))

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False) -> torch.Tensor:
        x = x.to(torch.float32)
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = torch.nn.functional.interpolate(x, size=(x.shape[2], 12, 12), mode="trilinear", align_corners=False)
        f = torch.cat([x.mean((2, 3, 4)), torch.relu(self.conv(x)).mean((2, 3, 4))], 1)
        return f if return_features else torch.softmax(f, 1)


class TinyInception(nn.Module):
    """Stand-in with the call signature of StyleGAN2-ADA's inception-2015-12-05.pt."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = torch.nn.functional.interpolate(img.to(torch.float32), size=(12, 12), mode="bilinear", align_corners=False)
        f = torch.cat([x.mean((2, 3)) / 128.0 - 1.0, torch.relu(self.conv(x / 128.0 - 1.0)).mean((2, 3))], 1)
        return f if return_features else torch.softmax(f, 1)


class Recorder(nn.Module):
    """Python detector that records what the protocol feeds it, then runs a stand-in."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, []

    def forward(self, x, **kw):
        self.calls.append((x.dtype, tuple(x.shape), dict(kw), int(x.min()), int(x.max())))
        return self.net(x, **kw)


@pytest.fixture
def scripted(tmp_path):
    paths = {}
    for name, net in (("i3d_torchscript.pt", TinyI3D()), ("inception-2015-12-05.pt", TinyInception())):
        torch.jit.script(net.eval()).save(str(tmp_path / name))
        paths[name] = tmp_path / name
    return paths


def test_torchscript_detector_loads_from_path_and_url_into_cache(scripted, tmp_path, monkeypatch):
    from gendef.metrics import torchscript as ts

    monkeypatch.setenv("GENDEF_CACHE", str(tmp_path / "cache"))
    video = torch.randint(0, 256, (2, 3, 8, 20, 20), dtype=torch.uint8)
    ref = TinyI3D()(video, rescale=True, resize=True, return_features=True).double()
    det = ts.load_detector(ts.I3D, str(scripted["i3d_torchscript.pt"]))
    torch.testing.assert_close(det(video), ref)  # called with StyleGAN-V's kwargs
    assert det(video).shape == (2, 11)
    url = scripted["i3d_torchscript.pt"].as_uri()  # file:// URL: the download path without a network
    from_url = ts.fetch_detector(ts.I3D, url)
    assert from_url.parent == tmp_path / "cache" / "metrics" / "detectors" and from_url.name.endswith("i3d_torchscript.pt")
    scripted["i3d_torchscript.pt"].unlink()
    assert ts.fetch_detector(ts.I3D, url) == from_url  # cached: the source is not read again
    torch.testing.assert_close(ts.load_detector(ts.I3D, url)(video), ref)
    assert not list(from_url.parent.glob("*.part"))
    with pytest.raises(MetricsError, match="expects uint8"):
        det(video.float())
    with pytest.raises(MetricsError, match="cannot download"):
        ts.fetch_detector(ts.I3D, (tmp_path / "missing.pt").as_uri())
    assert not list(from_url.parent.glob("*.part"))  # failed downloads leave nothing behind
    (tmp_path / "junk.pt").write_bytes(b"not torchscript")
    with pytest.raises(MetricsError, match="not a TorchScript"):
        ts.load_detector(ts.I3D, str(tmp_path / "junk.pt"))
    with pytest.raises(MetricsError, match="not a file, URL or hub file"):
        ts.fetch_detector(ts.INCEPTION, str(tmp_path / "nothing.pt"))


def test_real_clip_plan_is_stylegan_v_sampling():
    from gendef.metrics.stylegan_v import FVD_PROTOCOLS, real_clip_plan

    lengths = [10, 40, 16, 100, 15]
    p16 = FVD_PROTOCOLS["fvd2048_16f"]
    plan = real_clip_plan(lengths, p16, 2, np.random.default_rng(0))
    assert [vi for vi, _ in plan] == [1, 2]  # short videos discarded, then the first max_videos in order
    starts = {1: set(), 2: set()}
    rng = np.random.default_rng(1)
    for _ in range(600):
        for vi, idx in real_clip_plan(lengths, p16, 2, rng):
            assert np.array_equal(idx, idx[0] + np.arange(16))
            starts[vi].add(int(idx[0]))
    assert starts[2] == {0} and starts[1] == set(range(25))  # randint(0, L - 16) inclusive
    sub8 = FVD_PROTOCOLS["fvd2048_128f_subsample8f"]
    starts = set()
    for _ in range(400):
        ((vi, idx),) = real_clip_plan([127, 130], sub8, 5, rng)
        assert vi == 1 and np.array_equal(np.diff(idx), np.full(15, 8)) and idx[-1] <= 129
        starts.add(int(idx[0]))
    assert starts == set(range(10))  # randint(0, L - n*s + s - 1)
    assert len(real_clip_plan([200] * 3000, FVD_PROTOCOLS["fvd2048_128f"], 2048, rng)) == 2048


@pytest.fixture
def long_data(tmp_path):
    from gendef.data.synthetic import write_dataset

    return write_dataset(tmp_path / "sky", videos=5, frames=18, resolution=16, seed=3, progress=False)


def _record_times(model, monkeypatch):
    seen, generate = [], model.generate

    def rec(z_c, z_d, noise, times, *a, **kw):
        seen.append(times.cpu().tolist())
        return generate(z_c, z_d, noise, times, *a, **kw)

    monkeypatch.setattr(model, "generate", rec)
    return seen


def test_fvd_protocol_feeds_uint8_clips_with_stylegan_v_kwargs(tiny_model, long_data, scripted, monkeypatch):
    from gendef.metrics import evaluate
    from gendef.metrics.torchscript import I3D, TorchScriptDetector

    rec = Recorder(torch.jit.load(str(scripted["i3d_torchscript.pt"])))
    times = _record_times(tiny_model, monkeypatch)
    res = evaluate(tiny_model, long_data, "fvd2048_16f", num_videos=6, i3d_torchscript=TorchScriptDetector(rec, I3D))
    assert np.isfinite(res["fvd2048_16f"]) and res["fvd2048_16f"] > 0
    real, fake = rec.calls[0], rec.calls[1:]
    assert real[:3] == (torch.uint8, (5, 3, 16, 16, 16), dict(rescale=True, resize=True, return_features=True))
    assert real[4] > 100  # [0, 255] pixels, not [0, 1]
    assert sum(c[1][0] for c in fake) == 6 and all(c[1][1:] == (3, 16, 16, 16) and c[0] == torch.uint8 for c in fake)
    assert times and all(t == list(range(16)) for t in times)  # fakes: frames 0..15 of fresh videos
    again = evaluate(tiny_model, long_data, "fvd2048_16f", num_videos=6, i3d_torchscript=str(scripted["i3d_torchscript.pt"]))
    assert again["fvd2048_16f"] == pytest.approx(res["fvd2048_16f"], rel=1e-6)  # the file equals the module
    with pytest.raises(MetricsError, match="needs real videos of 128 frames"):
        evaluate(tiny_model, long_data, "fvd2048_128f", num_videos=6, i3d_torchscript=str(scripted["i3d_torchscript.pt"]))


def test_fid50k_full_uses_every_real_frame_and_generated_frames_0_to_15(tiny_model, long_data, scripted, monkeypatch):
    from gendef.metrics import evaluate
    from gendef.metrics.torchscript import INCEPTION, TorchScriptDetector

    rec = Recorder(torch.jit.load(str(scripted["inception-2015-12-05.pt"])))
    times = _record_times(tiny_model, monkeypatch)
    res = evaluate(tiny_model, long_data, "fid50k_full", num_fid_frames=40, inception_torchscript=TorchScriptDetector(rec, INCEPTION))
    assert np.isfinite(res["fid50k_full"]) and res["fid50k_full"] > 0
    shapes = [c[1] for c in rec.calls]
    assert all(c[0] == torch.uint8 and c[2] == dict(return_features=True) for c in rec.calls)
    assert sum(s[0] for s in shapes) == 5 * 18 + 40  # every real frame (5 videos x 18), then exactly 40 fakes
    assert shapes[0] == (18, 3, 16, 16)
    flat = sorted({t for ts_ in times for t in np.ravel(ts_).tolist()})
    assert flat == list(range(16))  # generated frames 0..15 only


def test_only_a_cache_the_caller_owns_keeps_detectors_and_real_statistics(tiny_model, long_data, scripted, monkeypatch):
    """Nothing is kept per process: without a cache each call reads the real set again; with one, the
    second call reads only the generated side, gives the same number, and reuses the loaded detector."""
    from gendef.metrics import evaluate, stylegan_v
    from gendef.metrics.cache import MetricsCache
    from gendef.metrics.torchscript import I3D, load_detector
    from train.config_schema import _check_eval
    from train.errors import ConfigError

    reads, real_clips = [], stylegan_v.real_clips
    monkeypatch.setattr(stylegan_v, "real_clips", lambda *a, **kw: (reads.append(1), real_clips(*a, **kw))[1])
    path = str(scripted["i3d_torchscript.pt"])
    kw = dict(num_videos=4, i3d_torchscript=path)
    plain = [evaluate(tiny_model, long_data, "fvd2048_16f", **kw)["fvd2048_16f"] for _ in range(2)]
    assert len(reads) == 2 and np.isfinite(plain[0]) and plain[1] == pytest.approx(plain[0], rel=1e-9)
    cache = MetricsCache()
    kept = [evaluate(tiny_model, long_data, "fvd2048_16f", cache=cache, **kw)["fvd2048_16f"] for _ in range(2)]
    assert len(reads) == 3 and kept == pytest.approx(plain, rel=1e-9)
    assert len(cache.detectors) == 1 and len(cache.real_stats) == 1
    det = next(iter(cache.detectors.values()))
    assert load_detector(I3D, path, cache=cache) is det and load_detector(I3D, path) is not det
    cache.clear()
    assert not cache.detectors and not cache.real_stats
    with pytest.raises(ConfigError, match="unknown eval key"):  # a training YAML cannot name the cache
        _check_eval({"cache": 1})


def test_cli_documents_and_runs_the_torchscript_detectors(tiny_checkpoint, long_data, scripted, tmp_path, capsys):
    from gendef.metrics.__main__ import main

    with pytest.raises(SystemExit):
        main(["--help"])
    doc = capsys.readouterr().out
    for needle in ("i3d_torchscript.pt", "inception-2015-12-05.pt", "rescale=True, resize=True, return_features=True",
                   "fid50k_full", "fvd2048_128f", "frames 0-15", "NOT comparable"):
        assert needle in doc
    out = tmp_path / "res.json"
    args = ["--checkpoint", str(tiny_checkpoint), "--data", str(long_data), "--metrics", "fvd2048_16f,fid50k_full",
            "--num-videos", "4", "--num-fid-frames", "20", "--device", "cpu", "--out", str(out),
            "--i3d-torchscript", str(scripted["i3d_torchscript.pt"]), "--inception-torchscript", str(scripted["inception-2015-12-05.pt"])]
    assert main(args) == 0
    assert set(json.loads(out.read_text())) == {"fvd2048_16f", "fid50k_full"}
    assert main(args[:-4] + ["--i3d-torchscript", str(tmp_path / "none.pt")]) == 2
    assert "not a file, URL or hub file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- SWD and motion statistics
def _smooth_images(n, size, seed, cells=8):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, cells, cells, generator=g)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False) * 255


def test_swd_is_zero_for_identical_sets_and_grows_with_a_shift():
    from gendef.metrics.swd import laplacian_pyramid, swd

    a, b = _smooth_images(128, 32, 0), _smooth_images(128, 32, 1)
    same = swd(a, b, per_image=64)
    assert set(same) == {"32px", "16px", "avg"}
    assert swd(a, a, per_image=64)["avg"] == 0.0  # identical sets (same patch positions): exactly 0
    coarser = swd(a, _smooth_images(128, 32, 1, cells=4), per_image=64)["avg"]
    darker = b.clone()
    darker[:64] *= 0.5  # half the images darker: the brightness distribution shifts
    shifted = swd(a, darker, per_image=64)["avg"]
    noisy = swd(a, b + 20 * torch.randn(b.shape, generator=torch.Generator().manual_seed(3)), per_image=64)
    assert coarser > 3 * same["avg"] and shifted > 3 * same["avg"]  # another draw of the same images is close
    assert noisy["32px"] > 2 * same["32px"]  # fine-scale noise shows at the finest level
    assert [p.shape[-1] for p in laplacian_pyramid(a, 3)] == [32, 16, 8]
    with pytest.raises(ValueError, match="same shape"):
        swd(a, a[:10])


def test_flow_stats_known_motion():
    from gendef.metrics.motion_stats import flow_stats

    steady = np.zeros((63, 4, 4, 2))
    steady[..., 0], steady[..., 1] = 3.0, 4.0
    s = flow_stats(steady)
    assert s["speed"] == pytest.approx(5.0) and s["jerk"] == pytest.approx(0.0) and s["drift"] == pytest.approx(1.0)
    back = steady.copy()
    back[48:] *= -1  # 48 frames forward, 15 back: net 33 of a 63-step path
    b = flow_stats(back)
    assert b["drift"] == pytest.approx(33 / 63) and b["jerk"] == pytest.approx(10.0 / 62)
    t = np.arange(64)
    sway = np.zeros((1, 64, 2, 2, 2))
    sway[..., 0] = np.sin(2 * np.pi * t / 32)[None, :, None, None]
    assert flow_stats(sway)["drift"] < 1e-9  # two full periods: back where it started
    still = np.zeros((2, 5, 3, 3, 2))
    still[1, ..., 0] = 1.0
    assert flow_stats(still)["drift"] == pytest.approx(1.0)  # the static video does not count


def test_estimated_motion_of_a_translating_texture():
    from gendef.metrics.motion_stats import clip_motion

    rng = np.random.default_rng(0)
    tex = cv2_blur(rng.uniform(0, 255, (256, 256, 3)).astype(np.float32))

    def clip(vx):
        frames, x = [], 40.0
        for v in vx:
            m = np.float32([[1, 0, -x], [0, 1, -30.0]])
            frames.append(np.clip(cv2_warp(tex, m), 0, 255).astype(np.uint8))
            x += v
        return np.stack(frames)

    steady = clip(np.full(24, 1.5))
    m = clip_motion([steady], size=64)
    assert m["speed"] == pytest.approx(1.5, rel=0.1) and m["drift"] > 0.9 and m["jerk"] < 0.3
    sway = clip(1.5 * np.sin(2 * np.pi * np.arange(24) / 12))
    assert clip_motion([sway], size=64)["drift"] < 0.25


def cv2_blur(x):
    import cv2

    return cv2.GaussianBlur(x, (0, 0), 3) * 3 - 200


def cv2_warp(img, m):
    import cv2

    return cv2.warpAffine(img, m, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
