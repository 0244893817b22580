"""benchmarks/curve.py: a run's learning curve as a figure beside the points it was drawn from."""

from __future__ import annotations

import json

from benchmarks import curve
from benchmarks.common import run_main


def _summary(tmp_path):
    points = [
        {
            "stage": 3,
            "step": s,
            "pairs_seen": 32 * s,
            "train_seconds": 60.0 * s,
            "question_xling_r@1": 0.3 + s / 100,
        }
        | {"flores_short_acc": 0.9 + s / 1000}
        for s in (10, 20, 30)
    ] + [{"stage": 4, "step": 10, "pairs_seen": 1280, "train_seconds": 2000.0, "question_xling_r@1": 0.6}]
    path = tmp_path / "training_summary.json"
    path.write_text(json.dumps({"curve": points, "baselines": {}}))
    return path, points


def test_a_summary_becomes_a_png_and_its_points(tmp_path, capsys):
    source, points = _summary(tmp_path)
    out = tmp_path / "fig" / "run"
    assert curve.main([str(source), "--out", str(out)]) == 0
    png = out.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    written = json.loads(out.with_suffix(".json").read_text())
    assert written["curve"] == points and written["teacher"] is None
    assert "4 points" in capsys.readouterr().out
    # the curve file redraws the same figure (and is not rewritten over itself)
    assert curve.main([str(out.with_suffix(".json")), "--out", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text()) == written


def test_the_committed_offline_long_curve_has_six_points_or_more():
    points, teacher = curve.read_curve(
        curve.Path(__file__).resolve().parents[1] / "docs/figures/offline-long.json"
    )
    assert len(points) >= 6 and teacher["question_xling_r@1"] > max(p["question_xling_r@1"] for p in points)
    assert sorted(p["train_seconds"] for p in points) == [p["train_seconds"] for p in points]


def test_what_is_not_a_curve_is_one_line(tmp_path, capsys):
    for name, text in (
        ("missing.json", None),
        ("bad.json", "{"),
        ("list.json", "[]"),
        ("none.json", '{"curve": []}'),
    ):
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        assert run_main(curve.main, [str(path), "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and name in err
    assert not (tmp_path / "x.png").exists()
