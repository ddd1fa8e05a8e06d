"""The default model's acceptance card and swap command (benchmarks/default_card.py, default_install.py,
default_fingerprint.py) on tiny in-process models and tiny data: seconds, not the real figures."""
import json

import numpy as np
import pytest
import torch

from benchmarks import default_card as dc
from benchmarks.default_fingerprint import fingerprint, fingerprint_problems, write_fingerprint
from benchmarks.default_install import TEMPLATE, install, render_card, sittings_summary
from gendef import GenDeF
from gendef.errors import UsageError
from gendef.metrics.evaluation import generated_clips
from gendef.metrics.field_health import BANDS, health_warnings
from tests.conftest import TINY_GENDEF


def _tiny(path, resolution):
    """A tiny random GenDeF whose field moves (the last ToOut is not zero), saved to ``path``."""
    torch.manual_seed(resolution)
    m = GenDeF(**{**TINY_GENDEF, "resolution": resolution})
    with torch.no_grad():
        m.deformation.to_outs[-1].conv.weight.normal_(0, 0.05)
    m.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return _tiny(root / "new32", 32), _tiny(root / "old16", 16)


def test_data_speed_is_the_documented_estimator():
    """The monitor's estimator (Farneback on frames resized to 128 px, 16 clips x 16 frames): the procedural sky
    moves 0.285 % of the side a frame at 32 px."""
    ds = dc.data_speed(32)
    assert ds["pct"] == pytest.approx(0.285, abs=0.002) and ds["px"] == pytest.approx(ds["pct"] * 32 / 100)
    assert ds["flow_size"] == 128


def test_zero_field_keeps_the_latents_and_shows_the_canonical_image(models):
    model = GenDeF.from_pretrained(models[0]).eval()
    moving = next(generated_clips(model, 2, 6, 2, 3, "cpu"))
    still = next(generated_clips(dc.ZeroField(model), 2, 6, 2, 3, "cpu"))
    z_c = model.make_latents(2, 6, generator=torch.Generator().manual_seed(3))[0]  # generated_clips' first draw
    canon = (model.canonical(z_c, 1.0, "const")[0].clamp(-1, 1) + 1) / 2
    assert still.shape == moving.shape == (2, 6, 3, 32, 32)
    assert (still - canon[:, None]).abs().max() < 1e-5  # every frame = the canonical image
    assert (moving - still).abs().mean() > 1e-3  # the real field moves


def _card(speed_rel=0.0, mean_pct=5.0, swd_pairs=((10.0, 12.0),), fvd=(1.0, 2.0), latency=None):
    """({figure: met}, the field statistics) of a card with these measurements."""
    card, stats = _card_dict(speed_rel, mean_pct, swd_pairs, fvd, latency)
    return {f["figure"]: f["met"] for f in dc.figures(card)}, stats


def _card_dict(speed_rel=0.0, mean_pct=5.0, swd_pairs=((10.0, 12.0),), fvd=(1.0, 2.0), latency=None):
    stats = {"mean_pct": mean_pct, "hf_pct": 0.2, "coverage": 0.8, "flow_speed_pct": 0.4 * (1 + speed_rel),
             "speed_pct": 0.9}  # the grid's speed is shown, not judged: the data has no grid
    draws = [{"draw": i, "model": a, "baseline": b, "floor": 1.0} for i, (a, b) in enumerate(swd_pairs)]
    swd = {"draws": draws, "model_mean": np.mean([d["model"] for d in draws]), "model_std": 0.0,
           "baseline_mean": np.mean([d["baseline"] for d in draws]), "baseline_std": 0.0}
    card = {"field_health": {"mean": stats, "data_speed": {"pct": 0.4}}, "swd": swd,
            "fvd": {"frames": 16, "model": fvd[0], "zero_field": fvd[1]}}
    if latency:
        card["latency"] = {"threads": 2, "rows": [{"action": "a", "frames": n, "wall_s": w, "cpu_s": c} for n, w, c in latency]}
    return card, stats


def test_verdicts_follow_the_bands_and_the_comparisons():
    met, stats = _card(speed_rel=0.29, latency=[(16, 2.5, 0.9), (128, 2.9, 5.0)])  # a shared machine: wall or CPU
    assert all(v is True for v in met.values()) and len(met) == 8
    assert health_warnings(stats, 0.4) == []  # the monitor agrees: healthy
    met, stats = _card(speed_rel=-0.31, mean_pct=BANDS["mean_pct"] + 0.1)
    assert not met["field: speed"] and not met["field: mean |m|"] and len(health_warnings(stats, 0.4)) == 2
    met, _ = _card(swd_pairs=((10.0, 12.0), (12.5, 12.0)), fvd=(2.0, 2.0), latency=[(16, 1.1, 1.2), (128, 2.0, 2.0)])
    assert met["SWD x1e3 (data at the model's size)"] is False  # better on average, not in every draw
    assert met["FVD16 (random I3D)"] is False  # motion must make it better, not equal
    assert met["studio latency, 16 frames"] is False and met["studio latency, 128 frames"] is True
    rows = dc.figures({**_card_dict()[0], "latency": {"threads": 2, "rows": [{"action": "a", "frames": 16, "wall_s": 4.0, "cpu_s": 1.6}]}})
    assert rows[-2]["met"] is False and "rerun on idle cores" in rows[-2]["measured"]  # 0.8 s per thread
    met, _ = _card()
    assert met["studio latency, 16 frames"] is None  # not measured is not met


def test_the_same_model_as_baseline_is_not_better(models):
    model = GenDeF.from_pretrained(models[1]).eval()
    s = dc.swd_draws(model, model, draws=2, num=16)
    assert [r["model"] for r in s["draws"]] == [r["baseline"] for r in s["draws"]]
    assert s["draws"][0]["model"] != s["draws"][1]["model"]  # each draw has its own data and seeds
    assert all(r["floor"] < r["model"] for r in s["draws"])  # data vs data is closer than a random model


class _MeanColour(torch.nn.Module):
    """A cheap stand-in for the random I3D (its 1024-d Fréchet distance alone costs seconds): 6 features."""

    def forward(self, videos):
        return torch.cat([videos.mean(dim=(1, 3, 4)), videos.std(dim=(1, 3, 4))], dim=1)


def test_card_measures_writes_and_installs(models, tmp_path, capsys, monkeypatch):
    from benchmarks.field_health import measure

    monkeypatch.setattr(dc, "random_i3d", lambda size: _MeanColour())
    new, old = models
    out = tmp_path / "card"
    assert dc.main([str(new), "--baseline", str(old), "--seeds", "0,1", "--frames", "8", "--draws", "1", "--swd-num", "16",
                    "--fvd-videos", "4", "--latency-frames", "16", "--latency-repeats", "1", "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    md = out.with_suffix(".md").read_text()
    assert md in capsys.readouterr().out and md.count("| field: ") == 4 and "**missed**" in md
    assert card["field_health"]["rows"] == measure(GenDeF.from_pretrained(new), [0, 1], 8)
    assert [f["met"] for f in card["figures"]][-1] is None  # 128 frames not timed here
    assert {r["frames"] for r in card["latency"]["rows"]} == {16} and len(card["latency"]["rows"]) == 6
    assert all(r["baseline"] > 0 and r["model"] > 0 for r in card["swd"]["draws"])
    assert card["baseline_sha256"] == fingerprint(old)["files"]["model.safetensors"]  # which model was beaten

    dest, strip, fp, template = tmp_path / "default", tmp_path / "strip.png", tmp_path / "fp.json", tmp_path / "t.md"
    template.write_text("# {{resolution}} px, {{parameters_m}} M\n{{sittings}}\n{{figures}}\n")
    sitting = tmp_path / "sitting.json"
    sitting.write_text(json.dumps({"stages": {"stage1": {"kimg_total": 39.072, "seconds": 3600.0}}}))
    kw = dict(dest=dest, strip=strip, fingerprint=fp, template=template)
    with pytest.raises(UsageError, match="missed or not measured: .*studio latency, 128 frames"):
        install(card, md, [sitting], **kw)
    assert not dest.exists() and not strip.exists()
    template.write_text("TODO(lead) {{figures}}")
    with pytest.raises(UsageError, match="TODO"):
        install(card, md, [sitting], allow_missed=True, **kw)
    template.write_text("# {{resolution}} px, {{parameters_m}} M\n{{sittings}}\n{{figures}}\n")
    install(card, md, [sitting], allow_missed=True, **kw)
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert (dest / "model.safetensors").read_bytes() == (new / "model.safetensors").read_bytes()
    readme = (dest / "README.md").read_text()
    assert readme.startswith("# 32 px,") and "| 1 (G_c + image D) | 1 | 39.1 | 1.00 | – |" in readme and md in readme
    from PIL import Image

    assert Image.open(strip).height >= 4 * 2 * 96  # four seeds: frames row and field row each
    assert fingerprint_problems(dest, json.loads(fp.read_text())) == []
    shipped = render_card(TEMPLATE.read_text().replace("TODO(lead)", "written"), card, md, sittings_summary([sitting]), 10**6)
    assert "{{" not in shipped and "# GenDeF default model: procedural sky time-lapses, 32×32" in shipped


def test_fingerprint_fails_on_new_weights_and_on_changed_samples(models, tmp_path):
    folder = models[1]
    fp = json.loads(write_fingerprint(folder, tmp_path / "fp.json").read_text())
    assert fingerprint(folder)["samples"] == fp["samples"]  # deterministic
    moved = json.loads(json.dumps(fp))
    moved["samples"][1]["canonical_probe"][5] += 1e-3
    assert fingerprint_problems(folder, moved) == ["seed 1: the canonical moved by up to 0.001 (tolerance 0.0001 across platforms)"]
    other = json.loads(json.dumps(fp))
    other["platform"], other["samples"][0]["grid_sha256"] = "torch 0.0, cpu NONE", "0" * 64
    assert fingerprint_problems(folder, other) == []  # elsewhere only the probes must agree
    other["platform"] = fp["platform"]
    assert fingerprint_problems(folder, other) == [f"seed 0: the grid is not bit-identical on {fp['platform']}"]
    fp["files"]["model.safetensors"] = "0" * 64
    assert "model.safetensors differ" in fingerprint_problems(folder, fp)[0]


def test_sittings_add_up(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"stages": {"stage1": {"kimg_total": 39.0, "seconds": 3600.0},
                                        "stage2": {"kimg_total": 10.0, "seconds": 1800.0}}}))
    b.write_text(json.dumps({"stages": {"stage2": {"kimg": 60.0, "wall_hours": 2.0, "cpu_hours": 3.5, "sittings": 3}}}))
    s = sittings_summary([a, b])
    assert s["stage1"] == {"kimg": 39.0, "wall_hours": 1.0, "cpu_hours": None, "sittings": 1}
    assert s["stage2"] == {"kimg": 60.0, "wall_hours": 2.5, "cpu_hours": None, "sittings": 4}  # CPU hours of one sitting unknown
    b.write_text("{}")
    with pytest.raises(UsageError, match="stages"):
        sittings_summary([b])
