"""Fréchet distance against scipy, detector weight loading, FID/FVD end to end with
randomly initialised detectors of the real architectures, and the CLI."""
import json

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from torch import nn

from gendef.metrics import MetricsError, feature_stats, frechet_distance, frechet_distance_from_features
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
