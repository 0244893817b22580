"""`distill run`: the four stages of Ding et al. (2022) in order, each writing its own directory.

Layout (`<out>` = data/students/<name> unless `out_dir` says otherwise):
  <out>.run/config.toml      the resolved config of the run
  <out>.run/metrics.jsonl    training losses, evaluations, stage timings (one JSON object a line)
  <out>.run/stageN/          the stage's output model (A after stage 1; S after stages 2-4)
  <out>.run/stageN/stage.json  written last: marks the stage complete (+ time, losses, dev scores)
  <out>.run/stageN.ckpt.pt   mid-stage checkpoint (removed when the stage completes)
  <out>/                     the final student with its model card

The stages are in `stages.py`, the state they share (directories, data, encoders) in `state.py`.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path

import torch

from distill.config import RunConfig, dump_toml, load_config, to_dict
from distill.evaluation.headline import headline
from distill.fileio import atomic_directory, check_output_dir
from distill.paths import data_dir
from distill.student import XLSearchRecurrentModel
from distill.train import distributed
from distill.train.evaluate import DevEvaluation
from distill.train.loop import MetricsLog, StepCallback
from distill.train.stages import STAGE_FUNCS, write_stage_info
from distill.train.state import STAGES, Run, RunError


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def default_out_dir(cfg: RunConfig) -> Path:
    return Path(cfg.out_dir) if cfg.out_dir else data_dir() / "students" / cfg.name


# Where and how fast a run trains, not what it trains: these may change between interruption and resume.
_RUNTIME_KEYS = {"device", "threads"}


def _config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if not prefix and k in _RUNTIME_KEYS:
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_diff(va, vb, prefix + k + ".")
        elif va != vb:
            out.append(f"{prefix}{k}: {vb!r} -> {va!r}")
    return out


def prepare_run_dir(
    cfg: RunConfig, run_dir: Path, *, resume: bool, overwrite: bool, only_stage: int | None
) -> None:
    saved = run_dir / "config.toml"
    if overwrite and run_dir.exists() and distributed.is_main():
        check_output_dir(run_dir, ours=("config.toml",), what="run directory")  # never a stranger's folder
        shutil.rmtree(run_dir)
    if saved.exists():
        old = to_dict(load_config(saved))
        diff = _config_diff(to_dict(cfg), old)
        if diff and resume:
            raise RunError(
                "--resume with a different config than the interrupted run:\n  "
                + "\n  ".join(diff)
                + "\n(rerun with the same config and overrides, or --overwrite to start over)"
            )
        if not resume and only_stage is None:
            raise RunError(
                f"run directory {run_dir} exists: use --resume to continue it, "
                "--overwrite to start over, or --stage N to redo one stage"
            )
    elif resume and not run_dir.exists():
        raise RunError(f"nothing to resume: {run_dir} does not exist")
    if distributed.is_main():
        run_dir.mkdir(parents=True, exist_ok=True)
        saved.write_text(dump_toml(cfg))


def run(
    cfg: RunConfig,
    *,
    stage: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_step: StepCallback | None = None,
) -> dict:
    """Run all enabled stages (or only `stage`), then export the final student. Returns a summary."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = distributed.setup(resolve_device(cfg.device))
    out_dir = default_out_dir(cfg)
    run_dir = out_dir.with_name(out_dir.name + ".run")
    check_output_dir(out_dir, [run_dir], what="out_dir")  # before hours of training, not after
    if distributed.is_main():  # the other ranks would see rank 0's fresh directory as a clash
        prepare_run_dir(cfg, run_dir, resume=resume, overwrite=overwrite, only_stage=stage)
    distributed.barrier()
    r = Run(
        cfg=cfg,
        out_dir=out_dir,
        run_dir=run_dir,
        device=device,
        log=MetricsLog(run_dir / "metrics.jsonl"),
        on_step=on_step,
        resume=resume,
        evaluation=DevEvaluation(enabled=cfg.eval.enabled, quick=cfg.eval.quick, langs=cfg.eval.langs),
    )
    r.log.write(
        event="run_start", stage=stage, resume=resume, device=device, world_size=distributed.world_size()
    )

    if cfg.eval.enabled and cfg.eval.baselines and distributed.is_main():
        _evaluate_baselines(r)
    todo = [stage] if stage else [n for n in STAGES if cfg.runs_stage(n)]
    for n in todo:
        if stage is None and r.done(n):
            continue  # resumed run: this stage finished before the interruption
        if stage is not None and r.done(n) and distributed.is_main():
            (r.stage_dir(n) / "stage.json").unlink()  # redoing a stage: it is not done until it finishes
        t0 = time.time()
        info = STAGE_FUNCS[n](r)
        distributed.barrier()
        info["dev"] = r.evaluate(f"stage{n}", r.stage_dir(n))
        info["dev_headline"] = headline(info["dev"])
        info["wall_seconds"] = round(time.time() - t0, 1)
        write_stage_info(r, n, info)
        distributed.barrier()  # the next stage reads this one's output, which rank 0 writes

    summary = summarize(r)
    last = max(n for n in STAGES if cfg.runs_stage(n))
    if r.done(last) and (stage is None or stage == last) and distributed.is_main():
        export_final(r, last, summary)
    r.log.write(event="run_done", out_dir=str(out_dir))
    return summary


def _evaluate_baselines(r: Run) -> None:
    """The dev scores of T and of A before stage 1, once per run (`baselines.json`)."""
    baselines_file = r.run_dir / "baselines.json"
    if baselines_file.exists():
        return
    teacher = r.evaluate("teacher", r.cfg.models.teacher)
    same = r.cfg.models.assistant == r.cfg.models.teacher  # T = A (the offline presets): score it once
    baselines = {
        "teacher": teacher,
        "assistant_raw": teacher if same else r.evaluate("assistant_raw", r.cfg.models.assistant),
    }
    baselines_file.write_text(json.dumps(baselines, indent=1))


def summarize(r: Run) -> dict:
    stages = {}
    for n in STAGES:
        if r.done(n):
            info = r.stage_info(n)
            stages[f"stage{n}"] = {k: v for k, v in info.items() if k != "losses"}
    baselines = {}
    if (r.run_dir / "baselines.json").exists():
        baselines = json.loads((r.run_dir / "baselines.json").read_text())
    return {
        "name": r.cfg.name,
        "run_dir": str(r.run_dir),
        "out_dir": str(r.out_dir),
        "stages": stages,
        "baselines": baselines,
        "curve": learning_curve(r.cfg, r.log.path, stages),
    }


def learning_curve(cfg: RunConfig, metrics: Path, stages: dict) -> list[dict]:
    """Dev headline against pairs seen and training seconds, counted from the start of stage 3: the
    `eval.every` points of stages 3-4 and each stage's end. Empty without `eval.every`."""
    points: dict[tuple[int, int], dict] = {}
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            e = json.loads(line)
            if e.get("event") == "eval" and "step" in e:
                points[(e["stage"], e["step"])] = e  # a redone stage: its latest scores
    if not points:
        return []
    curve, pairs, seconds = [], 0, 0.0
    for n in (3, 4):
        info = stages.get(f"stage{n}")
        if not info:
            break
        for step in sorted(s for m, s in points if m == n and s < info["steps"]):
            e = points[(n, step)]
            curve.append(_point(n, step, pairs + e["pairs_seen"], seconds + e["train_seconds"], e["metrics"]))
        pairs += info["steps"] * cfg.stage(n).batch_size
        seconds += info["train_seconds"]
        curve.append(_point(n, info["steps"], pairs, seconds, info.get("dev") or {}))
    return curve


def _point(stage: int, step: int, pairs: int, seconds: float, metrics: dict) -> dict:
    return {
        "stage": stage,
        "step": step,
        "pairs_seen": pairs,
        "train_seconds": round(seconds, 1),
        **headline(metrics),
    }


def export_final(r: Run, last: int, summary: dict) -> None:
    from distill.student.card import model_card

    src = r.stage_dir(last)
    a_params = r.stage_info(2).get("assistant_params") if r.done(2) else None  # stage 2 counted A
    student = XLSearchRecurrentModel.from_pretrained(src)
    summary = {**summary, "environment": {"python": platform.python_version(), "torch": torch.__version__}}
    with atomic_directory(r.out_dir, [r.run_dir]) as tmp:
        shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("stage.json"), dirs_exist_ok=True)
        (tmp / "README.md").write_text(model_card(r.cfg, student, summary, assistant_params=a_params))
        (tmp / "training_summary.json").write_text(json.dumps(summary, indent=1))
