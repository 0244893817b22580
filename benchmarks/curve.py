"""A run's learning curve as a figure: dev question R@1 (cross-lingual) and bitext accuracy against
training minutes, one marker per point, the stages told apart.

The input is a `training_summary.json` (a run's `curve`, what `eval.every` recorded, and its teacher
baseline) or a JSON object with the same `curve` and a `teacher` headline. The figure is a PNG (matplotlib, no display needed) beside the points it was drawn
from, so that a figure in `docs/` always has its numbers next to it.

Examples:
  python -m benchmarks.curve data/students/offline-long/training_summary.json --out docs/figures/offline-long
  python -m benchmarks.curve docs/figures/offline-long.json --out docs/figures/offline-long
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.common import BenchmarkError, run_main
from distill.fileio import atomic_write_text

# (label, headline key) of the two panels
PANELS = (
    ("question R@1, cross-lingual", "question_xling_r@1"),
    ("FLORES bitext, short half", "flores_short_acc"),
)
STAGE_NAMES = {2: "start (no training)", 3: "stage 3 (pooled MSE)", 4: "stage 4 (score KL)"}


def read_curve(path: Path) -> tuple[list[dict], dict | None]:
    """(points, the teacher's headline or None) of a training summary or a curve file."""
    from distill.evaluation.headline import headline

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchmarkError(f"{path}: cannot read a curve ({exc})") from None
    if not isinstance(data, dict):
        raise BenchmarkError(f"{path}: not a training summary or a curve file (a JSON object)")
    points = data.get("curve")
    if not isinstance(points, list) or not points:
        raise BenchmarkError(f"{path}: no learning curve in it (run with eval.every > 0)")
    for p in points:
        if not isinstance(p, dict) or not {"stage", "train_seconds"} <= p.keys():
            raise BenchmarkError(f"{path}: a point without stage and train_seconds: {p!r}")
    teacher = data.get("teacher")
    if teacher is None and (data.get("baselines") or {}).get("teacher"):
        teacher = headline(data["baselines"]["teacher"])
    return points, teacher


def draw(points: list[dict], png: Path, *, title: str, teacher: dict | None = None) -> Path:
    """Two panels against training minutes; `teacher` (headline keys) as a dashed line in each."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(10, 3.8), constrained_layout=True)
    for ax, (label, key) in zip(axes, PANELS, strict=True):
        xs = [p["train_seconds"] / 60 for p in points if p.get(key) is not None]
        ys = [p[key] for p in points if p.get(key) is not None]
        ax.plot(xs, ys, color="0.6", linewidth=1)
        for stage, name in STAGE_NAMES.items():
            sel = [
                (p["train_seconds"] / 60, p[key])
                for p in points
                if p["stage"] == stage and p.get(key) is not None
            ]
            if sel:
                ax.scatter(*zip(*sel, strict=True), label=name, zorder=3)
        if teacher and teacher.get(key) is not None:
            ax.axhline(teacher[key], linestyle="--", color="black", linewidth=1, label="teacher")
        ax.set_xlabel("training minutes (from the start of stage 3)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    tmp = png.with_name(png.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(png)  # a half-written figure never sits under the final name
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.curve",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("source", type=Path, help="a training_summary.json, or a curve file (OUT.json)")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.png and OUT.json (the curve)")
    parser.add_argument("--title", default="", help="the figure's title (default: the source's name)")
    args = parser.parse_args(argv)
    points, teacher = read_curve(args.source)
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.with_suffix(".json").resolve() != args.source.resolve():
        curve = {"source": str(args.source), "teacher": teacher, "curve": points}
        atomic_write_text(out.with_suffix(".json"), json.dumps(curve, indent=1) + "\n")
    draw(points, out.with_suffix(".png"), title=args.title or args.source.name, teacher=teacher)
    print(f"wrote {out.with_suffix('.png')} ({len(points)} points)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
