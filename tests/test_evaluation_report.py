"""Runner, reports and CLI on tiny models and tiny real-format files; the HTML in headless Chromium."""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import re
from pathlib import Path

import pytest
import torch

from distill.cli import main as distill_main
from distill.data import Query
from distill.documents import Document
from distill.evaluation import (
    BitextEvaluator,
    CostEvaluator,
    RetrievalEvaluator,
    StsEvaluator,
    evaluate_models,
    load_results,
    parse_model_args,
    write_report,
)

torch.set_num_threads(1)

EN = [
    "The cat sits on the mat.",
    "A man is playing a guitar.",
    "Who won the Super Bowl?",
    "The dog runs in the park.",
]
DE = [
    "Die Katze sitzt auf der Matte.",
    "Ein Mann spielt Gitarre.",
    "Wer hat den Super Bowl gewonnen?",
    "Der Hund läuft im Park.",
]
ES = [
    "El gato se sienta en la alfombra.",
    "Un hombre toca la guitarra.",
    "¿Quién ganó el Super Bowl?",
    "El perro corre en el parque.",
]


def tiny_evaluators():
    corpus = [
        Document(f"{i}.{lang}", lang, text)
        for lang, texts in (("de", DE), ("es", ES))
        for i, text in enumerate(texts)
    ]
    queries = [Query(f"q{i}", "en", t) for i, t in enumerate(EN)]
    qrels = {f"q{i}": {f"{i}.de": 1, f"{i}.es": 1} for i in range(len(EN))}
    return [
        BitextEvaluator(DE, EN, name="toy-de", src_lang="de", tgt_lang="en", dataset="toy"),
        BitextEvaluator(ES, EN, name="toy-es", src_lang="es", tgt_lang="en", dataset="toy"),
        StsEvaluator(EN, DE, [5.0, 4.0, 4.5, 3.0], name="sts-en-de", lang1="en", lang2="de", dataset="sts"),
        RetrievalEvaluator(queries, corpus, qrels, name="ret", per_target_language=True),
        CostEvaluator(EN * 4, batch_size=4),
    ]


@pytest.fixture(scope="module")
def report_dir(tiny_model_dir, tiny_model_dir_b, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    calls = []
    run = evaluate_models(
        {"teacher": str(tiny_model_dir), "student": str(tiny_model_dir_b)},
        tiny_evaluators(),
        out,
        progress=lambda f, msg: calls.append((f, msg)),
        suite="toy",
    )
    return out, run, calls


def test_runner_collects_metrics_and_progress(report_dir):
    _, run, calls = report_dir
    assert [m.label for m in run.models] == ["teacher", "student"]
    assert run.models[0].role == "teacher" and run.reference().label == "teacher"
    for m in run.models:
        assert {
            "toy-de_accuracy",
            "sts-en-de_spearman",
            "ret_ndcg@10",
            "ret_en-de_map",
            "cost_sentences_per_s",
        } <= set(m.metrics)
        assert m.info["params_stored"] == m.metrics["cost_params_stored"]
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and calls[-1][1] == "done"
    pairs = {(e.dataset, e.lang_pair) for e in run.models[0].entries if e.metric in ("accuracy", "ndcg@10")}
    assert {("toy", "de-en"), ("toy", "es-en"), ("ret", "en-de"), ("ret", "en-es"), ("ret", "all")} <= pairs


def test_report_files_roundtrip_and_self_contained_html(report_dir):
    out, run, _ = report_dir
    data = json.loads((out / "metrics.json").read_text())
    assert data["software"]["torch"] == importlib.metadata.version("torch")
    assert {m["spec"] for m in data["models"]} == {m.spec for m in run.models}
    assert any(
        e["model"] == "student" and e["lang_pair"] == "es-en" and e["metric"] == "accuracy"
        for e in data["entries"]
    )
    again = load_results(out)
    assert again.metrics == run.metrics
    html = (out / "report.html").read_text()
    images = re.findall(r"src='data:image/png;base64,[A-Za-z0-9+/=]+'", html)
    # per-language bars for toy, sts and ret, the ratio figure, size versus quality
    assert len(images) == 5
    assert not re.search(r"(src|href)=['\"](?!data:)", html), (
        "report.html must not load anything from outside"
    )
    md = (out / "report.md").read_text()
    for name in re.findall(r"\]\((figures/[^)]+)\)", md):
        assert (out / name).stat().st_size > 1000
    assert "| toy | bitext |" in md and "student/teacher" in md and "sha256" in md


def test_nan_metrics_survive_json(tiny_model_dir_b, tmp_path):
    # a constant gold score leaves the correlation undefined: stored as null, read back as NaN
    ev = StsEvaluator(EN, DE, [3.0, 3.0, 3.0, 3.0], name="flat")
    run = evaluate_models({"only": str(tiny_model_dir_b)}, [ev], tmp_path)
    assert math.isnan(run.metrics["only"]["flat_spearman"])
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["only"]["flat_spearman"] is None
    assert math.isnan(load_results(tmp_path).metrics["only"]["flat_spearman"])
    write_report(load_results(tmp_path), tmp_path / "again")  # one model, NaN values: still renders
    assert "–" in (tmp_path / "again" / "report.md").read_text()


def test_parse_model_args():
    assert parse_model_args(["teacher=pkg:multilingual-e5-small", "data/students/offline"]) == {
        "teacher": "pkg:multilingual-e5-small",
        "offline": "data/students/offline",
    }
    with pytest.raises(ValueError, match="given twice"):
        parse_model_args(["a=x", "a=y"])
    with pytest.raises(ValueError, match="empty model spec"):
        parse_model_args(["teacher="])


# --- the CLI ------------------------------------------------------------------------------------


@pytest.fixture()
def files(tmp_path):
    bitext = tmp_path / "toy.en-de.tsv"
    bitext.write_text(
        "en\tde\n" + "".join(f"{a}\t{b}\n" for a, b in zip(EN, DE, strict=True)), encoding="utf-8"
    )
    sts = tmp_path / "toy-sts.tsv"
    sts.write_text(
        "sentence1\tsentence2\tscore\tlang1\tlang2\n"
        + "".join(f"{a}\t{b}\t{s}\ten\tes\n" for a, b, s in zip(EN, ES, [5, 2, 4, 1], strict=True)),
        encoding="utf-8",
    )
    q, c, r = tmp_path / "q.jsonl", tmp_path / "c.jsonl", tmp_path / "r.tsv"
    q.write_text(
        "".join(json.dumps({"id": f"q{i}", "lang": "en", "text": t}) + "\n" for i, t in enumerate(EN)),
        encoding="utf-8",
    )
    c.write_text(
        "".join(json.dumps({"id": f"d{i}", "lang": "de", "text": t}) + "\n" for i, t in enumerate(DE)),
        encoding="utf-8",
    )
    r.write_text(
        "query_id\tdoc_id\trelevance\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(4)), encoding="utf-8"
    )
    return {"bitext": bitext, "sts": sts, "retrieval": f"queries={q},corpus={c},qrels={r}", "qrels": r}


def test_cli_writes_the_three_files(tiny_model_dir, tiny_model_dir_b, files, tmp_path, capsys):
    out = tmp_path / "out"
    code = distill_main(
        [
            "evaluate",
            "--model",
            f"teacher={tiny_model_dir}",
            "--model",
            f"student={tiny_model_dir_b}",
            "--bitext",
            str(files["bitext"]),
            "--sts",
            str(files["sts"]),
            "--retrieval",
            files["retrieval"],
            "--margin",
            "--no-cost",
            "--batch-size",
            "4",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert {p.name for p in out.iterdir()} >= {"metrics.json", "report.md", "report.html", "figures"}
    run = load_results(out)
    assert {"toy.en-de_accuracy", "toy-sts_spearman", "q_ndcg@10"} <= set(run.metrics["student"])
    assert any(d.get("scoring") == "ratio margin k=4" for d in run.evaluators)
    assert "toy.en-de" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message", "exit_code"),
    [
        (["--sts", "/nonexistent/sts.tsv"], "file not found", 1),  # runtime failure
        (["--retrieval", "queries=a.jsonl,corpus=b.jsonl"], "lacks ['qrels']", 2),  # usage error
        ([], "nothing to evaluate", 2),
    ],
)
def test_cli_reports_bad_input_without_traceback(
    tiny_model_dir_b, tmp_path, capsys, extra, message, exit_code
):
    code = distill_main(["evaluate", "--model", str(tiny_model_dir_b), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == exit_code and message in err and "Traceback" not in err


def test_cli_skips_the_cost_evaluator_without_its_texts(
    tiny_model_dir_b, files, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("XLSEARCH_SHARED_DATA", str(tmp_path / "no-shared-data"))
    out = tmp_path / "o"
    code = distill_main(
        ["evaluate", "--model", str(tiny_model_dir_b), "--sts", str(files["sts"]), "--out", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    assert "cost evaluator skipped" in capsys.readouterr().err
    assert "toy-sts_spearman" in load_results(out).metrics[next(iter(load_results(out).metrics))]


def test_cli_reports_unknown_qrels_ids(tiny_model_dir_b, files, tmp_path, capsys):
    files["qrels"].write_text("query_id\tdoc_id\trelevance\nq0\tnope\t1\n", encoding="utf-8")
    code = distill_main(
        [
            "evaluate",
            "--model",
            str(tiny_model_dir_b),
            "--retrieval",
            files["retrieval"],
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "document id(s) not in" in err


# --- the HTML in a real browser ---------------------------------------------------------------


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report_dir):
    chromium = Path(os.environ.get("XLSEARCH_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        pytest.skip(f"headless Chromium not found at {chromium}")
    sync_api = pytest.importorskip("playwright.sync_api")
    out, _, _ = report_dir
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.goto((out / "report.html").resolve().as_uri())
        images = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert len(images) == 5
        assert all(done and w > 300 and h > 200 for done, w, h in images), images
        assert page.locator("h2", has_text="Summary").count() == 1
        assert page.locator("table").count() >= 5
        page.screenshot(path=str(out / "screenshot.png"), full_page=True)
        browser.close()
    assert (out / "screenshot.png").stat().st_size > 10_000
