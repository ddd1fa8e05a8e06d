"""Two-stage trainer on a tiny dataset the test writes: artefacts, exact resume, NaN stop,
stage-2 zero-deformation start, ablation switches, and a real 2-process accelerate launch."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]

from train import finetune, pretrain
from train.checkpoint import Checkpointer
from train.config import ConfigError, load_config, validate_config

TINY = str(ROOT / "train" / "configs" / "tiny.yaml")
FAST = ["progress=false", "log_every=1", "sample_count=2", "sample_frames=4"]


def write_videos(root: Path, n_videos=3, n_frames=10, size=20, as_mp4=False):
    from gendef.video.io import write_video

    rng = np.random.default_rng(0)
    for v in range(n_videos):
        base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        frames = np.stack([np.roll(base, t, axis=1) for t in range(n_frames)])
        if as_mp4:
            write_video(frames, root / f"v{v}.mp4", fps=8)
            continue
        d = root / f"v{v}"
        d.mkdir(parents=True)
        for t, f in enumerate(frames):
            Image.fromarray(f).save(d / f"{t:04d}.png")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    frames = write_videos(root / "frames")
    from gendef.data.prepare import prepare_dataset

    prepare_dataset(frames, root / "frames.zip", resolution=16, progress=False)
    write_videos(root / "mp4", as_mp4=True)
    (root / "mp4" / "corrupt.mp4").write_bytes(b"\x00" * 1000)
    return root


@pytest.fixture(scope="module")
def stage1(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "stage1"
    rc = pretrain.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={out}", "max_steps=4",
                        "ckpt_every=2", "sample_every=2", *FAST])
    assert rc == 0
    return out


def steps_in(out: Path):
    return sorted(p.name for p in (out / "checkpoints").glob("step-*"))


def test_config_overrides_and_errors(tmp_path):
    cfg = load_config(TINY, ["lr=0.01", "model.z_dim=8", "r1_gamma=3"], "finetune")
    assert cfg["lr"] == 0.01 and cfg["model"]["z_dim"] == 8 and cfg["model"]["w_dim"] == 16
    assert cfg["r1_gamma"] == 3 and cfg["lambda_reg"] == 1.0
    assert load_config(TINY, [], "pretrain")["r1_gamma"] == 0.5
    assert load_config(TINY, [], "finetune")["r1_gamma"] == 8
    with pytest.raises(ConfigError, match="unknown config key 'lrr'"):
        load_config(TINY, ["lrr=1"])
    with pytest.raises(ConfigError, match="no dataset"):
        validate_config(load_config(TINY, ["output_dir=x"]), "pretrain")
    with pytest.raises(ConfigError, match="init="):
        validate_config(load_config(TINY, ["output_dir=x", "data=y"]), "finetune")
    for name in ("sky256", "taichi256", "ytb256"):
        c = load_config(str(ROOT / "train" / "configs" / f"{name}.yaml"), ["data=d", "output_dir=o", "init=i"], "finetune")
        validate_config(c, "finetune")
        assert c["batch_size"] == 64 and c["lr"] == 0.0025 and c["r1_gamma"] == 8 and c["lambda_reg"] == 1
        assert load_config(str(ROOT / "train" / "configs" / f"{name}.yaml"), [], "pretrain")["r1_gamma"] == 0.5
    assert load_config(TINY, ["mixed_precision=no"])["mixed_precision"] == "no"  # YAML reads a bare no as false
    with pytest.raises(ConfigError, match="mixed_precision"):
        validate_config(load_config(TINY, ["data=d", "output_dir=o", "mixed_precision=fp64"]), "pretrain")
    with pytest.raises(ConfigError, match="augment must be"):
        validate_config(load_config(TINY, ["data=d", "output_dir=o", "augment=diffaugment"]), "pretrain")
    assert load_config(None)["ada_kimg"] == 100  # official StyleGAN-V / GenDeF scripts
    sky = load_config(str(ROOT / "train" / "configs" / "sky256.yaml"))
    assert sky["model"]["time_min_period"] == 256 and sky["model"]["resolution"] == 256


def test_stage1_artefacts_and_export(stage1):
    from gendef import GenDeF

    assert (stage1 / "checkpoints" / "latest").read_text().strip() == "step-00000004"
    assert steps_in(stage1) == ["step-00000002", "step-00000004"]
    state = json.loads((stage1 / "checkpoints" / "step-00000004" / "train_state.json").read_text())
    assert state["step"] == 4 and state["cur_nimg"] == 16
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(stage1 / "logs" / "pretrain"))
    ea.Reload()
    assert {"loss/G", "loss/D", "loss/r1", "progress/kimg", "data/skipped"} <= set(ea.Tags()["scalars"])
    assert [e.step for e in ea.Scalars("loss/G")] == [1, 2, 3, 4]
    assert "samples/images" in ea.Tags()["images"]
    assert (stage1 / "samples" / "images-00000004.png").is_file()
    m = GenDeF.from_pretrained(stage1)
    ema = load_file(str(stage1 / "checkpoints" / "step-00000004" / "G_ema.safetensors"))
    for k, v in m.state_dict().items():
        if k.endswith("w_avg"):  # recomputed exactly at export for truncation
            assert v.abs().sum() > 0
            continue
        torch.testing.assert_close(v, ema[k])
    g = load_file(str(stage1 / "checkpoints" / "step-00000004" / "G.safetensors"))
    fresh = load_file(str(stage1 / "checkpoints" / "step-00000002" / "G.safetensors"))
    assert any(not torch.equal(g[k], fresh[k]) for k in g if k.startswith("canonical."))  # G_c trained
    assert all(torch.equal(g[k], fresh[k]) for k in g if k.startswith("deformation."))  # G_d untouched
    vid = m.sample(seed=1, num_frames=3)
    assert vid.frames().shape == (3, 16, 16, 3)


def test_stage2_starts_from_canonical_and_trains(stage1, data, tmp_path):
    from gendef import GenDeF

    cfg = load_config(TINY, [f"init={stage1}"], "finetune")
    G, D, _ = finetune.load_stage1(cfg, "cpu")
    with torch.no_grad():
        z_c, z_d, noise = G.make_latents(2, 8)
        out = G.generate(z_c, z_d, noise, torch.tensor([0.0, 3.0, 7.0]))
    assert out["frames"].shape == (2, 3, 3, 16, 16)
    expect = out["canonical"][:, None].expand_as(out["frames"])
    torch.testing.assert_close(out["frames"], expect, atol=1e-5, rtol=0)  # step 0: frames == canonical
    d1 = load_file(str(stage1 / "discriminator.safetensors"))
    assert all(torch.equal(D.state_dict()[k], v) for k, v in d1.items())

    out_dir = tmp_path / "stage2"
    rc = finetune.main(["--config", TINY, f"data={data / 'frames.zip'}", f"output_dir={out_dir}", f"init={stage1}",
                        "max_steps=2", "ckpt_every=2", "sample_every=2", *FAST])
    assert rc == 0
    assert (out_dir / "samples" / "video-00000002.mp4").stat().st_size > 0
    assert list((out_dir / "logs" / "finetune").glob("events.out.tfevents.*"))
    m = GenDeF.from_pretrained(out_dir)
    assert m.deformation.to_outs[-1].conv.weight.abs().sum() > 0  # G_d left its zero start
    assert m.sample(seed=0, num_frames=4).grid.shape == (4, 16, 16, 2)


def test_freeze_canonical_without_reg(stage1, data, tmp_path):
    from gendef import GenDeF

    out_dir = tmp_path / "fix"
    rc = finetune.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={out_dir}", f"init={stage1}",
                        "max_steps=2", "freeze_canonical=true", "lambda_reg=0", "sample_every=0", *FAST])
    assert rc == 0
    before, after = GenDeF.from_pretrained(stage1), GenDeF.from_pretrained(out_dir)
    for (k, a), b in zip(before.canonical.state_dict().items(), after.canonical.state_dict().values()):
        assert torch.equal(a, b), k
    assert not torch.equal(before.deformation.to_outs[-1].conv.weight, after.deformation.to_outs[-1].conv.weight)


def test_a_checkpoint_exports_as_the_run_exports_itself(stage1, data, tmp_path):
    from safetensors.torch import load_file

    from gendef import GenDeF
    from train.export_checkpoint import main as export_main

    out_dir = tmp_path / "s2"
    assert finetune.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={out_dir}", f"init={stage1}",
                          "max_steps=2", "ckpt_every=2", "sample_every=0", "model.field_reference_time=4", *FAST]) == 0
    assert export_main([str(out_dir), str(tmp_path / "exp")]) == 0
    run, exp = GenDeF.from_pretrained(out_dir), GenDeF.from_pretrained(tmp_path / "exp")
    assert exp.field_reference_time == 4.0 == run.field_reference_time
    a, b = run.state_dict(), exp.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    da, db = (load_file(str(d / "discriminator.safetensors")) for d in (out_dir, tmp_path / "exp"))
    assert da.keys() == db.keys() and all(torch.equal(da[k].float(), db[k].float()) for k in da)
    assert export_main([str(out_dir), str(tmp_path / "x"), "--step", "7"]) == 2


def test_a_random_restart_of_g_d_is_drawn_from_the_run_seed(stage1):
    from train.config import load_config
    from train.finetune import load_stage1

    def last(seed):
        cfg = load_config(TINY, [f"init={stage1}", "model.deformation_init=xavier", f"seed={seed}"], "finetune")
        return load_stage1(cfg, "cpu")[0].deformation.to_outs[-1].conv.weight.detach().clone()

    a, b, c = last(3), last(3), last(4)
    assert torch.equal(a, b) and not torch.equal(a, c) and a.abs().sum() > 0


def test_drift_start_runs_before_the_adversarial_steps(stage1, data, tmp_path, capsys):
    from gendef import GenDeF

    out_dir = tmp_path / "drift"
    rc = finetune.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={out_dir}", f"init={stage1}",
                        "max_steps=1", "drift_start_steps=3", "model.deformation_init=xavier", "sample_every=0", *FAST])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "drift start 3/3" in printed and printed.index("drift start 3/3") < printed.index("done at step 1")
    assert GenDeF.from_pretrained(out_dir).deformation.to_outs[-1].conv.weight.abs().sum() > 0


def test_stage2_takes_the_warp_and_the_sky_drift_from_its_own_config(stage1, data, tmp_path, capsys):
    """The default's recipe switches: warp_padding and warp_interpolation are weightless keys stage 2 takes
    from its own config (stage 1 trained black/bilinear), and the drift start takes its row profile."""
    import json

    from gendef import GenDeF

    out_dir = tmp_path / "sky"
    rc = finetune.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={out_dir}", f"init={stage1}",
                        "max_steps=1", "drift_start_steps=2", "drift_start_profile=sky", "model.deformation_init=xavier",
                        "model.warp_padding=border", "model.warp_interpolation=bicubic", "sample_every=0", *FAST])
    assert rc == 0 and "drift start 2/2" in capsys.readouterr().out
    saved = json.loads((stage1 / "config.json").read_text())
    assert (saved.get("warp_padding", "black"), saved.get("warp_interpolation", "bilinear")) != ("border", "bicubic")
    model = GenDeF.from_pretrained(out_dir)
    assert (model.warp_padding, model.warp_interpolation) == ("border", "bicubic")
    video = model.sample(seed=0, num_frames=2)
    assert (video.padding, video.interpolation) == ("border", "bicubic")


def test_d_warmup_trains_d_alone(stage1, data, tmp_path):
    from safetensors.torch import load_file

    from gendef import GenDeF

    out_dir = tmp_path / "warm"
    rc = finetune.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={out_dir}", f"init={stage1}",
                        "max_steps=2", "d_warmup_kimg=1", "sample_every=0", *FAST])
    assert rc == 0
    before, after = GenDeF.from_pretrained(stage1), GenDeF.from_pretrained(out_dir)
    for (k, a), b in zip(before.canonical.state_dict().items(), after.canonical.state_dict().values()):
        assert torch.equal(a, b), k
    assert after.deformation.to_outs[-1].conv.weight.abs().sum() == 0  # G_d still at its zero start
    d0, d1 = load_file(str(stage1 / "discriminator.safetensors")), load_file(str(out_dir / "discriminator.safetensors"))
    changed = [k for k in d0 if k in d1 and not torch.equal(d0[k], d1[k])]
    assert len(changed) > 0.5 * len(d0)  # D trained


def test_resume_continues_exactly(data, tmp_path):
    args = ["--config", TINY, f"data={data / 'frames'}", "ckpt_every=2", "sample_every=0", "ada_interval=3", "aug_p=0.5", *FAST]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert pretrain.main(args + [f"output_dir={straight}", "max_steps=4"]) == 0
    assert pretrain.main(args + [f"output_dir={split}", "max_steps=2"]) == 0
    # a kill in the middle of the next save leaves a partial temp folder behind
    partial = split / "checkpoints" / ".tmp-step-00000004"
    partial.mkdir()
    (partial / "G.safetensors").write_bytes(b"half written")
    resolved = Checkpointer(split).resolve("latest")
    assert resolved.name == "step-00000002"
    (split / "checkpoints" / "latest").unlink()  # pointer lost too: newest complete folder wins
    assert Checkpointer(split).resolve("latest").name == "step-00000002"
    assert pretrain.main(args + [f"output_dir={split}", "max_steps=4", "resume=latest"]) == 0
    assert json.loads((split / "checkpoints" / "step-00000004" / "train_state.json").read_text())["step"] == 4
    assert not partial.exists()
    for name in ("G", "D", "G_ema"):
        a = load_file(str(straight / "checkpoints" / "step-00000004" / f"{name}.safetensors"))
        b = load_file(str(split / "checkpoints" / "step-00000004" / f"{name}.safetensors"))
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}.{k} differs after resume"


def test_nan_loss_stops_and_keeps_last_good_checkpoint(stage1, data, tmp_path, capsys):
    import shutil

    out = tmp_path / "nan"
    shutil.copytree(stage1 / "checkpoints", out / "checkpoints")
    rc = pretrain.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={out}", "resume=latest",
                        "max_steps=12", "lr=1e30", "ckpt_every=100", "sample_every=0", *FAST])
    assert rc == 3
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "step-00000004" in err
    assert steps_in(out) == ["step-00000002", "step-00000004"]
    g = load_file(str(out / "checkpoints" / "step-00000004" / "G.safetensors"))
    assert all(torch.isfinite(v).all() for v in g.values())
    assert not (out / "model.safetensors").exists()


def test_bad_inputs_fail_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = pretrain.main(["--config", TINY, f"data={tmp_path / 'empty'}", f"output_dir={tmp_path / 'o'}", *FAST])
    assert rc == 2 and "no readable videos" in capsys.readouterr().err
    rc = finetune.main(["--config", TINY, f"data={tmp_path}", f"output_dir={tmp_path / 'o2'}", f"init={tmp_path / 'nope'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "init:" in err and len(err.strip().splitlines()) == 1
    rc = pretrain.main(["--config", TINY, f"data={tmp_path / 'x'}", f"output_dir={tmp_path / 'y'}", "batch_size=3", "grad_accum=2"])
    assert rc == 2 and "not divisible" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
    assert pretrain.main(["--config", TINY, f"output_dir={tmp_path / 'z'}"]) == 2
    assert "no dataset" in capsys.readouterr().err


def _once_differentiable_grid_sample():
    """F.grid_sample as torch 2.11 CUDA has it: differentiable once, its backward not again."""
    from torch.autograd.function import once_differentiable

    native = torch.nn.functional.grid_sample

    class GridSample(torch.autograd.Function):
        @staticmethod
        def forward(ctx, image, grid, kwargs):
            ctx.save_for_backward(image, grid)
            ctx.kwargs = kwargs
            return native(image, grid, **kwargs)

        @staticmethod
        @once_differentiable
        def backward(ctx, grad):
            image, grid = ctx.saved_tensors
            with torch.enable_grad():
                image, grid = image.detach().requires_grad_(True), grid.detach().requires_grad_(True)
                gi, gg = torch.autograd.grad(native(image, grid, **ctx.kwargs), (image, grid), grad)
            return gi, gg, None

    return lambda image, grid, **kwargs: GridSample.apply(image, grid, kwargs)


def test_r1_through_forced_augmentation_without_grid_sample_double_backward(stage1, data, tmp_path, monkeypatch):
    """augment=fixed aug_p=1 r1_interval=1: every step runs R1 (double backward) through every ADA op,
    in both stages, with grid_sample differentiable only once (as on torch 2.11 CUDA)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    once = _once_differentiable_grid_sample()
    x, w = torch.rand(1, 3, 4, 4, requires_grad=True), torch.rand(3, 1, 1, requires_grad=True)
    (g,) = torch.autograd.grad((once(x, torch.rand(1, 4, 4, 2) * 2 - 1, align_corners=True) * w).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):  # the emulation bites, as torch 2.11 CUDA does
        g.square().sum().backward()
    monkeypatch.setattr(torch.nn.functional, "grid_sample", once)
    forced = ["augment=fixed", "aug_p=1", "r1_interval=1", "max_steps=3", "sample_every=0", *FAST]
    s1, s2 = tmp_path / "forced1", tmp_path / "forced2"
    assert pretrain.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={s1}", *forced]) == 0
    assert finetune.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={s2}", f"init={stage1}", *forced]) == 0
    for out, stage in ((s1, "pretrain"), (s2, "finetune")):
        ea = EventAccumulator(str(out / "logs" / stage))
        ea.Reload()
        for tag in ("loss/G", "loss/D", "loss/r1"):
            values = [e.value for e in ea.Scalars(tag)]
            assert len(values) == 3 and all(np.isfinite(values)), (stage, tag)
        assert all(e.value > 0 for e in ea.Scalars("loss/r1")) and ea.Scalars("aug/p")[-1].value == 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_accelerate_launch_two_processes(stage1, data, tmp_path):
    """Stage 2 on mp4 files through a real 2-process gloo launch (grads all-reduced by hand)."""
    out = tmp_path / "mp"
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), str(ROOT / "train" / "finetune.py"),
           "--config", TINY, f"data={data / 'mp4'}", f"output_dir={out}", f"init={stage1}",
           "max_steps=2", "ckpt_every=2", *FAST]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "3 videos, 3 items, 1 skipped" in r.stdout and "corrupt.mp4" in r.stderr
    ck = out / "checkpoints" / "step-00000002"
    assert (ck / "random_states_0.pkl").is_file() and (ck / "random_states_1.pkl").is_file()
    assert (out / "model.safetensors").is_file() and (out / "samples" / "video-00000002.mp4").is_file()


def test_max_kimg_stops_the_run(data, tmp_path):
    out = tmp_path / "kimg"
    assert pretrain.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={out}", "max_steps=null",
                          "max_kimg=0.008", "sample_every=0", *FAST]) == 0  # 8 images at batch 4
    assert json.loads((out / "checkpoints" / "step-00000002" / "train_state.json").read_text())["cur_nimg"] == 8


def test_periodic_eval_keeps_best_and_survives_missing_weights(stage1, data, tmp_path, capsys):
    from safetensors.torch import save_file

    from gendef import GenDeF
    from gendef.metrics.i3d import InceptionI3d

    torch.manual_seed(0)
    net = InceptionI3d()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(m.weight)
    weights = tmp_path / "i3d.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    base = ["--config", TINY, f"data={data / 'frames'}", f"init={stage1}", "max_steps=2", "eval_every=1",
            "eval_metrics=fvd8", "eval.num_videos=4", "eval.batch_size=4", "sample_every=0", *FAST]
    out = tmp_path / "eval"
    assert finetune.main(base + [f"output_dir={out}", f"eval.i3d={weights}"]) == 0
    best = json.loads((out / "best" / "metrics.json").read_text())
    assert best["step"] in (1, 2) and best["fvd8"] > 0
    GenDeF.from_pretrained(out / "best")
    out2 = tmp_path / "eval_missing"
    assert finetune.main(base + [f"output_dir={out2}", "eval.i3d=null"]) == 0
    assert "evaluation disabled" in capsys.readouterr().err and (out2 / "model.safetensors").is_file()


def test_resume_refuses_other_stage_or_shape(stage1, data, tmp_path, capsys):
    ck = stage1 / "checkpoints" / "step-00000004"
    assert finetune.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={tmp_path / 'a'}", f"init={stage1}",
                          f"resume={ck}", *FAST]) == 2
    assert "is a pretrain checkpoint" in capsys.readouterr().err
    assert pretrain.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={tmp_path / 'b'}", f"resume={ck}",
                          "model.z_dim=8", *FAST]) == 2
    assert "does not match this config" in capsys.readouterr().err


def test_push_to_hub_failure_is_one_line_and_keeps_export(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "push"
    rc = pretrain.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={out}", "max_steps=1",
                        "sample_every=0", "push_to_hub=someone/gendef-test", *FAST])
    assert rc == 4 and "push_to_hub=someone/gendef-test failed" in capsys.readouterr().err
    assert (out / "model.safetensors").is_file()


def test_out_of_gpu_memory_is_one_line_and_keeps_the_checkpoints(stage1, data, tmp_path, capsys, monkeypatch):
    """A step that runs out of memory (raised here on CPU) stops in one line naming the batch and what to change."""
    import shutil

    from train.oom import OUT_OF_MEMORY
    from train.run import Run

    def boom(self, *a, **k):
        raise OUT_OF_MEMORY("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total capacity)")

    out = tmp_path / "oom"
    shutil.copytree(stage1 / "checkpoints", out / "checkpoints")
    monkeypatch.setattr(Run, "generator_step", boom)
    rc = pretrain.main(["--config", TINY, f"data={data / 'frames'}", f"output_dir={out}", "resume=latest",
                        "max_steps=12", "ckpt_every=100", "sample_every=0", *FAST])
    assert rc == 5
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, lines
    line = lines[0]
    for part in ("out of GPU memory", "batch_size", "mixed_precision=bf16", "grad_accum", "step-00000004"):
        assert part in line, (part, line)
    assert steps_in(out) == ["step-00000002", "step-00000004"]


def test_trainer_without_its_extra_says_which_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as after `pip install -r requirements.txt`
    rc = pretrain.main(["--config", TINY, f"data={tmp_path}", f"output_dir={tmp_path / 'o'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert 'pip install ".[train]"' in err[0] and "tensorboard" in err[0]
    assert not (tmp_path / "o").exists()


def test_stage2_field_monitor_logs_warns_once_and_draws(stage1, data, tmp_path, capsys, monkeypatch):
    from gendef.metrics import field_health

    monkeypatch.setitem(field_health.BANDS, "mean_pct", -1.0)  # any field is "too large": the warning must fire
    monkeypatch.setitem(field_health.BANDS, "static_speed_pct", -1.0)  # and only that one
    monkeypatch.setitem(field_health.BANDS, "speed_rel", float("inf"))  # (the speed band, measured on the data)
    out_dir = tmp_path / "monitored"
    rc = finetune.main(["--config", TINY, f"data={data / 'frames.zip'}", f"output_dir={out_dir}", f"init={stage1}",
                        "max_steps=3", "ckpt_every=10", "sample_every=0", "health_seeds=1", "health_frames=4",
                        "health_strip_every=2", *FAST])
    assert rc == 0
    health = json.loads((out_dir / "health.json").read_text())
    assert health["step"] == 3 and set(health["last"]) >= {"mean", "hf", "speed", "coverage", "mean_pct"}
    assert [w["statistic"] for w in health["warnings"]] == ["field/mean"]  # reported once, when it left the band
    assert capsys.readouterr().out.count("warning: step 1: field/mean") == 1
    assert (out_dir / "samples" / "field-00000002.png").stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(next((out_dir / "logs" / "finetune").glob("events.out.tfevents.*"))))
    acc.Reload()
    assert {"field/mean_px", "field/hf_px", "field/speed_px", "field/coverage"} <= set(acc.Tags()["scalars"])


def test_stage2_monitor_measures_the_data_speed_and_flags_a_static_field(stage1, data, tmp_path, capsys):
    """Issue 27: without health_data_speed the monitor measures the training data's speed (its frames roll
    1 px per frame) with the samples' estimator; a field that has not moved yet is "nearly static"."""
    out_dir = tmp_path / "static"
    rc = finetune.main(["--config", TINY, f"data={data / 'frames.zip'}", f"output_dir={out_dir}", f"init={stage1}",
                        "max_steps=1", "ckpt_every=10", "sample_every=0", "health_seeds=1", "health_frames=4",
                        "health_strip_every=0", *FAST])
    assert rc == 0
    health = json.loads((out_dir / "health.json").read_text())
    assert health["data_speed_from"].startswith("measured on 16 clips x 16 frames of the training data")
    assert health["data_speed_pct"] > 1.0  # 1 px per frame of 20 px, seen at 16 px: several % of the side
    assert health["last"]["flow_speed_pct"] < 0.05 * health["data_speed_pct"]  # zero-initialised G_d
    speed = [w["message"] for w in health["warnings"] if w["statistic"] == "field/speed"]
    assert len(speed) == 1 and "nearly static" in speed[0]
    assert "field monitor: the data moves" in capsys.readouterr().out


def test_guard_lr_deformation_mult_puts_g_d_in_its_own_group():
    from types import SimpleNamespace

    from gendef import GenDeF
    from train.run import Run

    G = GenDeF(**load_config(TINY, [], "finetune")["model"])
    runlike = SimpleNamespace(cfg={"lr": 0.002, "lr_deformation_mult": 0.1})
    groups = Run._g_groups(runlike, G.named_parameters())
    assert [g.get("lr") for g in groups] == [None, pytest.approx(0.0002)]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in G.deformation.parameters()}
    runlike.cfg["lr_deformation_mult"] = 1.0  # the paper's recipe: one group, parameters in module order
    (only,) = Run._g_groups(runlike, G.named_parameters())
    assert [id(p) for p in only["params"]] == [id(p) for p in G.parameters()]


def test_guard_field_smoothness_is_logged_and_trains(stage1, data, tmp_path):
    out_dir = tmp_path / "smooth"
    rc = finetune.main(["--config", TINY, f"data={data / 'frames.zip'}", f"output_dir={out_dir}", f"init={stage1}",
                        "max_steps=2", "ckpt_every=10", "sample_every=0", "lambda_field_smooth=10",
                        "lr_deformation_mult=0.5", *FAST])
    assert rc == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(next((out_dir / "logs" / "finetune").glob("events.out.tfevents.*"))))
    acc.Reload()
    values = [e.value for e in acc.Scalars("loss/field_smooth")]
    assert len(values) == 2 and all(np.isfinite(values)) and values[0] == 0.0  # zero-initialised G_d: m = 0 at step 1
