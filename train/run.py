"""The run: one object that owns everything around a stage's inner steps.

It holds the accelerator, the networks (G, D, EMA), the optimizers, the step counters
(``state``), ADA, the checkpointer and the progress bar, so the stage scripts read top to bottom:

    run = Run(settings, "pretrain")          # settings: train.config.parse_args, checked once
    run.setup(G, D, disc_cfg, trained=G.canonical, video=False)
    for _ in run.steps():
        loss_D, r1, real_logits = run.discriminator_step(draw)
        logs = run.generator_step(loss_fn)
        run.end_step({...})
    run.finish()

Errors are raised (``TrainError``); only ``main`` turns them into an exit code (``run_stage``).
"""
from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

import torch
import yaml

from gendef.errors import DatasetError, MissingExtra
from gendef.extras import require_extra
from gendef.metrics.cache import MetricsCache

from train.augment import AdaptiveAugment, augment
from train.checkpoint import Checkpointer, export_generator, write_atomic
from train.config import data_options, flat_scalars, parse_args, per_process_batch
from train.config_schema import Settings
from train.distributed import all_finite, broadcast_parameters, sync_gradients
from train.ema import EMA
from train.logcsv import append_row
from train.errors import NonFiniteLoss, TrainError
from train.monitor import FieldMonitor
from train.oom import OUT_OF_MEMORY, out_of_memory
from train.previews import log_samples, write_samples
from train.speed import adam_kwargs, apply_switches, apply_threads, eager

__all__ = ["Run", "run_stage"]


def run_stage(argv, stage: str, description: str, train: Callable[["Run"], None]) -> int:
    """Parse, build the run, train, close; user-facing errors become one line and an exit code."""
    run = None
    try:
        require_extra("train")
        run = Run(parse_args(argv, stage, description), stage)
        train(run)
        return 4 if run.push_failed else 0
    except MissingExtra as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OUT_OF_MEMORY as e:
        err = out_of_memory(run, e)
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except DatasetError as e:  # the data became unreadable mid-run (also when raised in a loader worker)
        err = run.stop_on_data_fault(e) if run is not None else TrainError(_last_line(e))
        if run is None or run.accelerator.is_main_process:
            print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except TrainError as e:
        if run is None or run.accelerator.is_main_process:
            print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    finally:
        if run is not None:
            run.close()


def _last_line(err: BaseException) -> str:
    """A DataLoader worker re-raises with the whole worker traceback as message: keep its last line."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()] or [type(err).__name__]
    return re.sub(r"^[\w.]+Error: ", "", lines[-1])


def _to_floats(scalars: dict) -> dict:
    """Python floats from a dict of tensors/numbers, with ONE device-to-host transfer for all tensors."""
    keys = [k for k, v in scalars.items() if torch.is_tensor(v)]
    out = {k: float(v) for k, v in scalars.items() if v is not None and not torch.is_tensor(v)}
    if keys:
        values = torch.stack([scalars[k].detach().float().reshape(()) for k in keys]).tolist()
        out.update(zip(keys, values))
    return {k: out[k] for k in scalars if k in out}


class Run:
    """Accelerator, trackers, data order, networks, optimizers, resume, NaN guard, EMA/ADA
    bookkeeping, checkpoints, samples, eval and export of one training stage."""

    def __init__(self, settings: Settings, stage: str):
        """``settings`` are checked (train.config.parse_args); ``cfg`` is the dict the loop reads, and
        ``settings.model`` / ``settings.disc`` the networks' checked settings."""
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        cfg = settings.train.as_dict()
        self.settings, self.cfg, self.stage = settings, cfg, stage
        self.out = Path(cfg["output_dir"])
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        self.accelerator = Accelerator(
            mixed_precision=cfg["mixed_precision"],
            log_with="tensorboard",
            project_config=ProjectConfiguration(project_dir=str(self.out), logging_dir=str(self.out)),
        )
        acc = self.accelerator
        self._threads_before = apply_threads(cfg, acc.device)
        self._trackers = False
        self.push_failed = False
        try:  # before anything is written: a bad config leaves no half-made run folder
            self.batch = per_process_batch(cfg, acc.num_processes)
        except TrainError:
            self.close()
            raise
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            write_atomic(self.out / f"{stage}_config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        acc.wait_for_everyone()
        acc.init_trackers(f"logs/{stage}", config=flat_scalars(cfg))
        self._trackers = True
        self.ckpt = Checkpointer(self.out, cfg["keep_checkpoints"])
        self.ada = AdaptiveAugment(cfg)
        self.datasets = []
        self.state: dict = {}
        self.metrics_cache = MetricsCache()  # detectors and real statistics, kept between evaluations
        self._last_saved = None
        self._t0 = time.time()

    @property
    def device(self):
        return self.accelerator.device

    # ------------------------------------------------------------------ building
    def dataset(self, cls, resolution: int, **kwargs):
        from gendef.errors import DatasetError

        res = self.cfg["resolution"] or resolution
        if res != resolution:
            raise TrainError(f"resolution={res} does not match the model's resolution {resolution}")
        try:
            ds = cls(self.cfg["data"], resolution, hflip=bool(self.cfg["hflip"]), seed=int(self.cfg["seed"]),
                     **data_options(self.cfg), **kwargs)
        except DatasetError as e:
            raise TrainError(str(e)) from None
        if self.accelerator.is_main_process:
            print(f"dataset {self.cfg['data']}: {len(ds.videos)} videos, {len(ds)} items, {len(ds.skipped)} skipped")
        self.datasets.append(ds)
        return ds

    def setup(self, G, D, disc_cfg: dict, trained: torch.nn.Module, video: bool) -> None:
        """Optimizers (G's over ``trained``'s trainable parameters), EMA of G, then resume."""
        self.G, self.D, self.disc_cfg, self.trained, self.video = G, D, disc_cfg, trained, video
        # kimg counts frames shown to D, as the official code does: a 3-frame clip is 3 images.
        self.frames_per_item = int(self.cfg["clip_frames"]) if video else 1
        apply_switches(dict(self.cfg, compile=False), G, D)  # compiled modules must not be deep-copied
        self.opt_G, self.opt_D = self._optimizers(trained.named_parameters(), D.parameters())
        self.ema = EMA(G)
        self.G_ema = self.ema.model
        if self.cfg["compile"]:
            apply_switches(dict(self.cfg, channels_last=False), G, D)
        self._bad = torch.zeros((), device=self.device)  # NaN guard: non-finite losses since the last read
        self._guarded: dict = {}
        self.modules = {"G": G, "D": D, "G_ema": self.G_ema}
        self.monitor = FieldMonitor(self.cfg, self.out, enabled=video and self.accelerator.is_main_process,
                                    data=self.datasets[0] if self.datasets else None)
        self._resume()

    def _optimizers(self, g_params, d_params):
        cfg = self.cfg
        lr_d = cfg["lr_d"] if cfg["lr_d"] is not None else cfg["lr"]
        b1, b2 = cfg["betas"]
        # StyleGAN2's lazy-regularisation correction of Adam's hyper-parameters for D.
        c = cfg["r1_interval"] / (cfg["r1_interval"] + 1) if cfg["r1_gamma"] > 0 else 1.0
        fast = adam_kwargs(cfg, self.device)
        opt_G = torch.optim.Adam(self._g_groups(g_params), lr=cfg["lr"], betas=(b1, b2), eps=1e-8, **fast)
        opt_D = torch.optim.Adam(list(d_params), lr=lr_d * c, betas=(b1**c, b2**c), eps=1e-8, **fast)
        self._hyper = [(opt_G, [g["lr"] for g in opt_G.param_groups], (b1, b2)),
                       (opt_D, [lr_d * c], (b1**c, b2**c))]
        return self.accelerator.prepare(opt_G, opt_D)

    def _g_groups(self, named_params) -> list:
        """G's trainable parameters; G_d's (``deformation.*``) at ``lr * lr_deformation_mult`` (stage-2 guard)."""
        mult = float(self.cfg["lr_deformation_mult"])
        params = [(n, p) for n, p in named_params if p.requires_grad]
        field = [p for n, p in params if n.startswith("deformation.")]
        rest = [p for n, p in params if not n.startswith("deformation.")]
        if mult == 1.0 or not field:
            return [{"params": [p for _, p in params]}]
        return [{"params": rest}, {"params": field, "lr": self.cfg["lr"] * mult}]

    def _resume(self) -> None:
        from accelerate.utils import set_seed

        acc = self.accelerator
        for m in self.modules.values():
            broadcast_parameters(m, acc)
        set_seed(int(self.cfg["seed"]), device_specific=True)
        self.state = {"stage": self.stage, "step": 0, "cur_nimg": 0, "aug_p": self.ada.p, "ada_signs": [], "best": None}
        if self.cfg["resume_pack"]:  # a state pack from an earlier sitting (train/state_pack.py)
            return self._resume_pack()
        report = (lambda line: print(line, file=sys.stderr)) if acc.is_main_process else None
        path = self.ckpt.resolve(self.cfg["resume"], report)
        if self.cfg["resume"] and path is None and acc.is_main_process:
            print(f"resume={self.cfg['resume']}: no checkpoint in {self.ckpt.root} yet, starting from scratch")
        if path is None:
            return
        saved_stage = json.loads((path / "train_state.json").read_text()).get("stage")
        if saved_stage != self.stage:
            raise TrainError(f"{path} is a {saved_stage} checkpoint; resume it with train/{saved_stage}.py")
        try:
            self.state.update(self.ckpt.load(acc, path, self.modules))
        except TrainError:
            raise
        except (RuntimeError, ValueError, KeyError, OSError) as e:
            raise TrainError(f"cannot resume from {path}: it does not match this config ({str(e).splitlines()[0][:200]})") from None
        self.ada.p = float(self.state["aug_p"])
        self.ada.signs = [torch.tensor(v) for v in self.state.get("ada_signs", [])]
        self._resumed(path)

    def _resumed(self, path) -> None:
        # The config, not the checkpoint, decides lr/betas: resuming with a lower lr must work.
        for opt, lrs, betas in self._hyper:
            for group, lr in zip(opt.param_groups, lrs):
                group["lr"], group["betas"] = lr, betas
        self._last_saved = self.state["step"]
        if self.accelerator.is_main_process:
            print(f"resumed from {path} at step {self.state['step']} ({self.state['cur_nimg'] / 1000:.1f} kimg)")

    def _resume_pack(self) -> None:
        from train.state_pack import load_pack

        if self.accelerator.num_processes != 1:
            raise TrainError("resume_pack needs one process (a pack holds one process's RNG state)")
        self.state.update(load_pack(self, self.cfg["resume_pack"]))
        self._resumed(self.cfg["resume_pack"])

    def loader(self, dataset) -> Iterator:
        """Batches for this process, continuing at the resumed step."""
        from train.batches import infinite_loader
        from train.device_data import device_batches, wants_device_data

        rank, step = self.accelerator.process_index, self.state["step"]
        if wants_device_data(self.cfg, dataset, self.device, self.video):
            return device_batches(dataset, self.cfg, self.batch, rank, step, self.device)
        return infinite_loader(dataset, self.cfg, self.batch, rank, step)

    # ------------------------------------------------------------------ the loop
    def _total_steps(self) -> Optional[int]:
        cfg = self.cfg
        steps = [cfg["max_steps"]] if cfg["max_steps"] is not None else []
        if cfg["max_kimg"]:
            steps.append(int(math.ceil(cfg["max_kimg"] * 1000 / (cfg["batch_size"] * self.frames_per_item))))
        return min(steps) if steps else None

    def steps(self) -> Iterator[int]:
        """Yields the step index until the run is done; the body ends with ``end_step``."""
        from tqdm import tqdm

        total = self._total_steps()
        self.bar = tqdm(total=total, initial=self.state["step"], desc=self.stage, unit="step",
                        disable=not (self.accelerator.is_main_process and self.cfg["progress"]), dynamic_ncols=True)
        while total is None or self.state["step"] < total:
            self._t0 = time.time()
            yield self.state["step"]

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """D's input augmentation at the current ADA probability (identity when p = 0)."""
        return augment(x, self.ada.current)

    def discriminator_step(self, draw) -> tuple:
        """One D update shared by both stages: logistic loss on reals vs fakes, lazy R1 on reals.

        ``draw(do_r1)`` returns (real, fake, real_times, fake_times); times are None in image mode.
        """
        from gendef.generator import losses

        cfg, acc, D = self.cfg, self.accelerator, self.D
        gamma, interval = float(cfg["r1_gamma"]), int(cfg["r1_interval"])
        do_r1 = gamma > 0 and self.state["step"] % interval == 0
        self.opt_D.zero_grad(set_to_none=True)
        for _ in range(cfg["grad_accum"]):
            real, fake, real_t, fake_t = draw(do_r1)
            if cfg["channels_last"] and real.ndim == 4:
                real, fake = (x.contiguous(memory_format=torch.channels_last) for x in (real, fake))
            with acc.autocast(), eager(do_r1):  # R1's double backward runs on the eager path
                real_logits = D(self.augment(real), real_t)
                fake_logits = D(self.augment(fake), fake_t)
            loss_D = losses.d_logistic(real_logits.float(), fake_logits.float())
            r1 = losses.r1_penalty(real_logits, real) if do_r1 else None
            total = loss_D + (r1 * (gamma / 2 * interval) if r1 is not None else 0.0)
            acc.backward(total / cfg["grad_accum"])
            self.ada.observe(real_logits)
        self.check_finite(loss_D=loss_D, r1=r1)
        sync_gradients(D, acc)
        self.opt_D.step()
        return loss_D, r1, real_logits

    def generator_step(self, loss_fn: Callable[[], Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """One G update through a frozen D. ``loss_fn()`` returns {"total": ..., "loss/...": ..., ...}:
        "total" is back-propagated, every "loss/*" entry is checked for NaN/inf, all are returned."""
        cfg, acc = self.cfg, self.accelerator
        self.D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        for _ in range(cfg["grad_accum"]):
            logs = loss_fn()
            acc.backward(logs.pop("total") / cfg["grad_accum"])
        self.D.requires_grad_(True)
        self.check_finite(**{k: v for k, v in logs.items() if k.startswith("loss/")})
        sync_gradients(self.trained, acc)
        self.opt_G.step()
        return logs

    def check_finite(self, **values) -> None:
        """NaN guard. The flag stays on the device; it is read every ``sync_every`` steps (``flush_finite``)."""
        vals = [v.detach().float().reshape(-1) for v in values.values() if v is not None]
        if vals:
            self._bad = self._bad + (~torch.isfinite(torch.cat(vals))).sum()
        self._guarded.update(values)
        if int(self.cfg["sync_every"]) == 1:
            self.flush_finite()

    def flush_finite(self) -> None:
        """One read of the NaN guard's flag (all processes agree); raises NonFiniteLoss when it is set."""
        bad, self._bad = self._bad, torch.zeros((), device=self.device)
        values, self._guarded = self._guarded, {}
        if all_finite(self.accelerator, torch.where(bad > 0, float("nan"), 0.0)):  # the one read
            return
        shown = ", ".join(f"{k}={v.item():.4g}" for k, v in values.items() if v is not None)
        every = int(self.cfg["sync_every"])
        when = f"step {self.state['step']}" if every == 1 else f"step {self.state['step']} or up to {every - 1} steps before"
        last = self.ckpt.latest()
        keep = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        raise NonFiniteLoss(f"non-finite loss at {when} ({shown}); training stopped, {keep}. "
                            f"Resume with resume=latest and a lower lr / higher r1_gamma.")

    def end_step(self, scalars: dict) -> None:
        """Counters, EMA, ADA, logs, progress bar, then samples / eval / checkpoint when due."""
        cfg, acc, state = self.cfg, self.accelerator, self.state
        state["step"] += 1
        state["cur_nimg"] += cfg["batch_size"] * self.frames_per_item
        self.ema.update(self.G, self.ema.beta(cfg, state["cur_nimg"]))
        rt = self.ada.step(acc, state["step"])
        state["aug_p"] = self.ada.p
        if int(cfg["sync_every"]) > 1 and (state["step"] % int(cfg["sync_every"]) == 0 or self._due(state["step"])):
            self.flush_finite()  # before anything is saved: a checkpoint never holds non-finite weights
        if state["step"] % cfg["log_every"] == 0 or state["step"] == 1:
            self._log(scalars, rt)
        self.bar.update(1)
        self._periodic()

    def _due(self, step: int) -> bool:
        """A checkpoint, samples or an eval follow this step."""
        cfg = self.cfg
        return any(every and step % every == 0 for every in (cfg["ckpt_every"], cfg["sample_every"], cfg["eval_every"]))

    def _log(self, scalars: dict, rt: Optional[float]) -> None:
        state = self.state
        logs = _to_floats(scalars)
        logs.update({"progress/kimg": state["cur_nimg"] / 1000, "aug/p": self.ada.current,
                     "time/sec_per_step": time.time() - self._t0,
                     "data/skipped": sum(d.num_skipped for d in self.datasets)})
        if rt is not None:
            logs["aug/rt"] = rt
        logs.update(self.monitor.scalars(self.G_ema, state["step"]))
        self.accelerator.log(logs, step=state["step"])
        self.bar.set_postfix(kimg=f"{state['cur_nimg'] / 1000:.1f}",
                             G=f"{logs.get('loss/G', float('nan')):.3f}", D=f"{logs.get('loss/D', float('nan')):.3f}")
        if self.accelerator.is_main_process:
            append_row(self.out / "log.csv", {"stage": self.stage, "step": state["step"], **logs})

    def _periodic(self) -> None:
        cfg, acc, step = self.cfg, self.accelerator, self.state["step"]
        if cfg["sample_every"] and step % cfg["sample_every"] == 0 and acc.is_main_process:
            log_samples(acc, write_samples(self.G_ema, cfg, step, self.out, self.video), step)
        if cfg["eval_every"] and step % cfg["eval_every"] == 0:
            self.evaluate()
        if step % cfg["ckpt_every"] == 0:
            self.save()

    def stop_on_data_fault(self, err: BaseException) -> TrainError:
        """Every read failing mid-run: keep the work done so far in a checkpoint, say so in one line."""
        where = "no step was done, nothing to save"
        if self.state.get("step") and getattr(self, "modules", None):
            self.save()
            where = f"the work so far is in {self.ckpt.latest()}"
        return TrainError(f"{_last_line(err)}; training stopped, {where}")

    # ------------------------------------------------------------------ outputs
    def save(self) -> None:
        if self._last_saved == self.state["step"]:
            return
        saved = dict(self.state, ada_signs=[float(v) for v in self.ada.signs])
        self.ckpt.save(self.accelerator, self.state["step"], self.modules, saved)
        self._last_saved = self.state["step"]

    def evaluate(self) -> Optional[dict]:
        acc, state = self.accelerator, self.state
        results = None
        failed = torch.zeros((), device=acc.device)
        if acc.is_main_process:
            from gendef.errors import DatasetError
            from gendef.metrics import evaluate
            from gendef.errors import MetricsError

            names = [m.strip() for m in str(self.cfg["eval_metrics"]).split(",") if m.strip()]
            try:
                results = evaluate(self.G_ema, self.cfg["data"], names, device=acc.device,
                                   data_options=data_options(self.cfg), cache=self.metrics_cache, **self.cfg["eval"])
            except (MetricsError, DatasetError, TypeError) as e:
                print(f"warning: evaluation disabled for this run: {e}", file=sys.stderr)
                failed += 1
        if results is not None:
            acc.log({f"metrics/{k}": v for k, v in results.items()}, step=state["step"])
            print(f"step {state['step']}: " + ", ".join(f"{k}={v:.3f}" for k, v in results.items()))
            key = names[0]
            if state["best"] is None or results[key] < state["best"]:
                state["best"] = float(results[key])
                # a full export (G_ema, D, raw G), so stage 2 can start from it: init=<stage 1>/best
                export_generator(self.G_ema, self.D, self.disc_cfg, self.cfg, self.out / "best", G_raw=self.G)
                write_atomic(self.out / "best" / "metrics.json", json.dumps({"step": state["step"], **results}))
        if acc.reduce(failed, reduction="sum").item() > 0:  # every process must agree to stop evaluating
            self.cfg["eval_every"] = 0
        return results

    def finish(self) -> None:
        """Last checkpoint, the export users load, final samples, optional push to the Hub."""
        acc, state = self.accelerator, self.state
        self.save()
        if acc.is_main_process and self.cfg["pack_out"]:
            from train.state_pack import write_pack

            write_pack(self, self.cfg["pack_out"], self.cfg["pack_precision"])
        if acc.is_main_process:
            export_generator(self.G_ema, self.D, self.disc_cfg, self.cfg, self.out, G_raw=self.G)
            if self.cfg["sample_every"]:
                log_samples(acc, write_samples(self.G_ema, self.cfg, state["step"], self.out, self.video), state["step"])
            print(f"done at step {state['step']} ({state['cur_nimg'] / 1000:.1f} kimg); "
                  f"generator exported to {self.out} (GenDeF.from_pretrained)")
            if self.cfg["push_to_hub"]:
                self._push(str(self.cfg["push_to_hub"]))
        acc.wait_for_everyone()

    def _push(self, repo: str) -> None:
        try:
            self.G_ema.push_to_hub(repo)
            print(f"pushed to https://huggingface.co/{repo}")
        except Exception as e:  # network/auth problems must not hide that training succeeded
            print(f"error: push_to_hub={repo} failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                  f"the model is saved in {self.out}", file=sys.stderr)
            self.push_failed = True

    def close(self) -> None:
        from accelerate.state import AcceleratorState

        if getattr(self, "bar", None) is not None:
            self.bar.close()
        if self._trackers:
            self.accelerator.end_training()
        if self.accelerator.num_processes == 1:
            AcceleratorState._reset_state(reset_partial_state=True)
        torch.set_num_threads(self._threads_before)
