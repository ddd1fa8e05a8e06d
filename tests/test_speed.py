"""Issue 20's speed switches on CPU: compiled vs eager (same losses and gradients to 1e-4 in fp32),
R1's double backward on the eager path, checkpointed G_d + warp, Adam's implementations, the
host-sync-free NaN guard and the one-transfer log."""
import copy
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from gendef import GenDeF
from gendef.generator.networks.discriminator import Discriminator
from train.run import _to_floats
from train.speed import adam_kwargs, apply_switches, eager

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "train" / "configs" / "tiny.yaml")
FAST = ["progress=false", "log_every=1", "sample_every=0", "ckpt_every=100"]


def tiny_nets():
    cfg = yaml.safe_load(open(TINY))
    torch.manual_seed(0)
    return GenDeF(**cfg["model"]), Discriminator(resolution=16, **cfg["disc"])


def d_step(G, D, r1: bool):
    """G_c samples and reals through D, with R1's gradient penalty when asked: loss and all gradients."""
    torch.manual_seed(1)
    fake = G.canonical(torch.randn(4, G.z_dim))[0]
    real = torch.randn(4, 3, 16, 16, requires_grad=r1)
    with eager(r1):
        real_logits = D(real)
        loss = torch.nn.functional.softplus(D(fake)).mean() + torch.nn.functional.softplus(-real_logits).mean()
    if r1:
        (g,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        loss = loss + g.square().sum()
    params = list(G.canonical.parameters()) + list(D.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss, [g for g in grads if g is not None]


@pytest.mark.parametrize("r1", [False, True])
def test_compiled_matches_eager(r1):
    G, D = tiny_nets()
    Gc, Dc = copy.deepcopy(G), copy.deepcopy(D)
    apply_switches({"compile": True, "compile_backend": "aot_eager"}, Gc, Dc)
    loss, grads = d_step(G, D, r1)
    loss_c, grads_c = d_step(Gc, Dc, r1)
    assert len(grads) == len(grads_c) > 10
    assert abs(loss.item() - loss_c.item()) < 1e-4
    assert max((a - b).abs().max().item() for a, b in zip(grads, grads_c)) < 1e-4
    assert loss.item() > 0 and any(g.abs().sum() > 0 for g in grads_c)


def test_checkpointed_deformation_matches():
    G, _ = tiny_nets()
    G.train()
    ref = copy.deepcopy(G)
    apply_switches({"checkpoint_deformation": True}, G, torch.nn.Identity())
    assert G.checkpoint_deformation and not ref.checkpoint_deformation

    def run(model):
        torch.manual_seed(2)
        z_c, z_d, noise = model.make_latents(2, 12)
        with torch.no_grad():  # a moving field, so G_d's gradients are not trivially zero
            for p in model.deformation.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        out = model.generate(z_c, z_d, noise, torch.tensor([[0.0, 3.0, 7.0]] * 2))
        loss = out["frames"].square().mean() + out["grid_norm"].square().mean()
        return loss, torch.autograd.grad(loss, [p for p in model.parameters() if p.requires_grad], allow_unused=True)

    loss, grads = run(ref)
    loss_k, grads_k = run(G)
    assert abs(loss.item() - loss_k.item()) < 1e-6
    pairs = [(a, b) for a, b in zip(grads, grads_k) if a is not None]
    assert len(pairs) > 10 and all(b is not None for _, b in pairs)
    assert max((a - b).abs().max().item() for a, b in pairs) < 1e-6


@pytest.mark.parametrize("choice", ["fused", "foreach", "loop"])
def test_adam_implementations_agree(choice):
    torch.manual_seed(0)
    w = torch.randn(50, requires_grad=True)
    w2 = w.detach().clone().requires_grad_(True)
    a = torch.optim.Adam([w], lr=0.01, betas=(0.0, 0.99))
    b = torch.optim.Adam([w2], lr=0.01, betas=(0.0, 0.99), **adam_kwargs({"adam": choice}, "cpu"))
    for _ in range(3):
        for p, opt in ((w, a), (w2, b)):
            opt.zero_grad()
            (p.sin() * torch.arange(50.0)).sum().backward()
            opt.step()
    assert torch.allclose(w, w2, atol=1e-6) and not torch.equal(w, torch.zeros(50))
    assert adam_kwargs({"adam": "auto"}, "cuda") == {"fused": True} and adam_kwargs({"adam": "auto"}, "cpu") == {}


def test_log_values_come_in_one_transfer(monkeypatch):
    calls = []
    real = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: calls.append(1) or real(self))
    out = _to_floats({"loss/G": torch.tensor(0.5), "loss/r1": None, "n": 3, "logits/fake": torch.tensor([[-1.25]])})
    assert out == {"loss/G": 0.5, "n": 3.0, "logits/fake": -1.25} and list(out) == ["loss/G", "n", "logits/fake"]
    assert len(calls) == 1


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from tests.test_train import write_videos

    return write_videos(tmp_path_factory.mktemp("speed_data") / "frames")


def test_compiled_run_matches_eager_run(data, tmp_path):
    """Stage 1 end to end, R1 every other step: compile=true (aot_eager) trains the same weights as eager."""
    from train import pretrain

    args = ["--config", TINY, f"data={data}", "max_steps=3", "r1_interval=2", *FAST]
    assert pretrain.main(args + [f"output_dir={tmp_path / 'eager'}"]) == 0
    assert pretrain.main(args + [f"output_dir={tmp_path / 'comp'}", "compile=true", "compile_backend=aot_eager",
                                 "channels_last=true", "sync_every=2"]) == 0
    a = load_file(str(tmp_path / "eager" / "checkpoints" / "step-00000003" / "G.safetensors"))
    b = load_file(str(tmp_path / "comp" / "checkpoints" / "step-00000003" / "G.safetensors"))
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4


def test_nan_guard_read_every_n_steps(data, tmp_path, capsys):
    from train import pretrain

    rc = pretrain.main(["--config", TINY, f"data={data}", f"output_dir={tmp_path / 'nan'}", "max_steps=12", "lr=1e30",
                        "sync_every=4", *FAST])
    assert rc == 3
    err = capsys.readouterr().err
    assert "non-finite loss at step 4 or up to 3 steps before" in err and "no checkpoint was written yet" in err


def test_device_data_order_depends_only_on_step(data):
    from gendef.data import FrameDataset
    from train.device_data import device_batches, wants_device_data

    ds = FrameDataset(str(data), 16, hflip=True, seed=0)
    cfg = {"seed": 3, "grad_accum": 1, "hflip": True, "data_on_device": "auto"}
    assert not wants_device_data(cfg, ds, "cpu", video=False)  # auto: CUDA only
    assert wants_device_data(dict(cfg, data_on_device=True), ds, "cpu", video=False)
    assert not wants_device_data(dict(cfg, data_on_device=True), ds, "cpu", video=True)  # clips: the DataLoader
    it = device_batches(ds, cfg, 6, 0, 0, "cpu")
    b0, b1 = next(it), next(it)
    resumed = next(device_batches(ds, cfg, 6, 0, 1, "cpu"))
    assert b0.shape == (6, 3, 16, 16) and b0.dtype == torch.float32
    assert torch.equal(b1, resumed) and not torch.equal(b0, b1)
    assert -1.0 <= b0.min() < b0.max() <= 1.0
    every = torch.stack([ds[i] for i in range(len(ds))])  # each drawn frame is a dataset frame, maybe mirrored
    for x in b0:
        d = torch.minimum((every - x).abs().amax((1, 2, 3)), (every - x.flip(-1)).abs().amax((1, 2, 3)))
        assert d.min() < 1e-6


def test_stage1_trains_from_device_data(data, tmp_path):
    from train import pretrain

    assert pretrain.main(["--config", TINY, f"data={data}", f"output_dir={tmp_path}", "max_steps=2",
                          "data_on_device=true", *FAST]) == 0
    assert (tmp_path / "checkpoints" / "step-00000002").is_dir()


def _first_losses(run_dir):
    import csv

    first = next(csv.DictReader(open(run_dir / "log.csv")))
    return [float(first[k]) for k in ("loss/D", "loss/G", "loss/r1") if first.get(k)]


@pytest.mark.parametrize("r1", [False, True])
def test_one_cpu_thread_gives_the_default_threads_losses_and_gradients(r1):
    """cpu_threads (issue 27; default 1 on the CPU): G_c + D loss and every gradient, with and without R1,
    equal torch's default thread count to 1e-4 (relative to the gradient's size)."""
    from train.speed import _TORCH_THREADS, apply_threads

    G, D = tiny_nets()
    before = apply_threads({"cpu_threads": 1}, "cpu")
    assert torch.get_num_threads() == 1
    loss_1, grads_1 = d_step(G, D, r1)
    apply_threads({"cpu_threads": 0}, "cpu")
    assert torch.get_num_threads() == _TORCH_THREADS
    loss_n, grads_n = d_step(G, D, r1)
    torch.set_num_threads(before)
    assert len(grads_1) == len(grads_n) > 10 and abs(loss_1.item() - loss_n.item()) < 1e-4
    assert all((a - b).abs().max().item() <= 1e-4 * max(1.0, a.abs().max().item()) for a, b in zip(grads_1, grads_n))


def test_cpu_threads_runs_log_the_same_first_losses_and_restore_the_threads(data, tmp_path):
    """Stage 1 (R1 at step 0) and stage 2 with cpu_threads=1 and =0 log the same first-step losses (to 1e-4);
    a run leaves the process's thread count as it found it. Later steps differ by Adam-amplified rounding."""
    from train import finetune, pretrain

    before = torch.get_num_threads()
    args = ["--config", TINY, f"data={data}", "max_steps=2", *FAST]
    for threads, name in ((1, "s1-one"), (0, "s1-all")):
        assert pretrain.main(args + [f"output_dir={tmp_path / name}", f"cpu_threads={threads}"]) == 0
        assert torch.get_num_threads() == before
    for threads, name in ((1, "s2-one"), (0, "s2-all")):
        assert finetune.main(["--config", TINY, f"data={data}", f"output_dir={tmp_path / name}", "max_steps=1",
                              f"init={tmp_path / 's1-one'}", f"cpu_threads={threads}", *FAST]) == 0
    for one, all_ in (("s1-one", "s1-all"), ("s2-one", "s2-all")):
        a, b = _first_losses(tmp_path / one), _first_losses(tmp_path / all_)
        assert len(a) == len(b) >= 3 and max(abs(x - y) for x, y in zip(a, b)) < 1e-4
