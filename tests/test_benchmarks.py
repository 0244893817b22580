"""Smoke test of the benchmark scripts: each runs its --quick version on tiny models and writes
well-formed JSON. Speed itself is never asserted (it is measured in benchmarks/, see its README)."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks import app, encode, index, quality, report, search
from benchmarks.common import Summary, interleave, markdown_table, paired_ratios, summarize


@pytest.fixture(autouse=True)
def _restore_threads():
    """The scripts set process-wide torch/FAISS thread counts; put them back for the other tests."""
    import faiss
    import torch

    torch_threads, faiss_threads = torch.get_num_threads(), faiss.omp_get_max_threads()
    yield
    torch.set_num_threads(torch_threads)
    faiss.omp_set_num_threads(faiss_threads)


def _load(path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))  # strict JSON: no NaN sneaks in
    for key in (
        "benchmark",
        "schema_version",
        "created",
        "quick",
        "machine",
        "load",
        "config",
        "headline",
        "results",
    ):
        assert key in data, key
    assert data["quick"] is True
    machine = data["machine"]
    assert machine["logical_cores"] >= 1 and machine["cpu_model"]
    assert machine["versions"]["torch"] and machine["versions"]["faiss-cpu"]
    assert set(machine["threads_at_write"]) == {"torch", "faiss"}
    assert data["load"]["wall_s"] > 0 and len(data["load"]["loadavg_start"]) == 3
    return data


def _finite_positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def test_search_quick(
    tmp_path, tiny_model_dir_b, shared_data
):  # shared_data: the real queries and demo corpus
    rc = search.main(
        [
            "--quick",
            "--out",
            str(tmp_path),
            "--sizes",
            "2000",
            "--queries",
            "40",
            "--pq-m",
            "8",
            "--real-model",
            str(tiny_model_dir_b),
            "--real-docs",
            "40",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--stores",
            "faiss,milvus",  # the server row: test_search_stores_include_a_milvus_server
        ]
    )
    assert rc == 0
    data = _load(tmp_path / "search-quick.json")
    assert data["benchmark"] == "search"
    rows = data["results"]["synthetic"]["2000"]["rows"]
    families = {r["family"] for r in rows}
    assert families == {"flat", "hnsw", "ivf", "ivfpq"}
    for r in rows:
        assert 0.0 <= r["recall@10"] <= 1.0
        assert _finite_positive(r["p50_ms"]) and r["p95_ms"] >= r["p50_ms"]
        assert _finite_positive(r["qps_batch_1t"])
    assert next(r for r in rows if r["family"] == "flat")["recall@10"] == 1.0
    assert any(r["frontier"] for r in rows if r["family"] == "hnsw")
    assert data["results"]["real"]["docs"] == 40
    assert "expectation_hnsw_p50_le_5ms_recall_ge_0.95" in data["headline"]
    assert "synthetic 2,000" in data["tables"]
    # The report collects it into markdown (the other benchmarks have not run in this directory).
    text = report.render(tmp_path, quick=True)
    assert "### search" in text and "| hnsw efSearch=16 |" in text and "No full run yet" in text


def test_encode_quick(tmp_path, tiny_model_dir, tiny_model_dir_b, shared_data):
    rc = encode.main(
        [
            "--quick",
            "--out",
            str(tmp_path),
            "--teacher",
            str(tiny_model_dir),
            "--assistant",
            str(tiny_model_dir),
            "--student",
            str(tiny_model_dir_b),
            "--sentences",
            "48",
            "--batch1-sentences",
            "6",
            "--onnx",
            "off",
            "--rss",
            "student",
            "--focus-langs",
            encode.FOCUS_LANGS,
        ]
    )
    assert rc == 0
    data = _load(tmp_path / "encode-quick.json")
    ratio = data["headline"]["student_vs_assistant_ratio"]
    assert _finite_positive(ratio)
    settings = data["results"]["settings"]
    assert set(settings) == {"t1_b64", "t1_b1", "t1_b64_focus"}  # focus: the student's training languages
    for key, setting in settings.items():
        expected = {"assistant", "student", "student-int8"} | (
            {"teacher", "teacher-int8", "assistant-int8"} if "focus" not in key else set()
        )
        assert set(setting["sentences_per_s"]) == expected
        assert all(_finite_positive(s["median"]) for s in setting["sentences_per_s"].values())
    assert _finite_positive(data["headline"]["student_vs_assistant_ratio_focus_langs"])
    # Every model's best backend, and the two headline ratios of the student on its best backend.
    best = data["headline"]["best_backend"]
    assert set(best) == {"teacher", "assistant", "student"} and best["student"]["backend"] in (
        "torch",
        "int8",
    )
    assert _finite_positive(data["headline"]["student_best_vs_assistant_fp32"])
    assert _finite_positive(data["headline"]["student_best_vs_assistant_same_backend"])
    tokens = data["results"]["tokens"]
    assert _finite_positive(tokens["student_over_assistant"]["all"])
    assert set(tokens["per_language"]) == {"teacher", "assistant", "student"}
    models = data["results"]["models"]
    assert models["student"]["peak_rss_mb"] > 0  # measured in a child process
    assert 0.9 < data["results"]["int8_onnx_agreement_with_fp32"]["student-int8"]["mean"] <= 1.0001
    assert len(data["config"]["languages"]) > 5  # mixed-language real sentences


def test_encode_reports_missing_student(tmp_path, tiny_model_dir, monkeypatch, shared_data):
    monkeypatch.setenv("XLSEARCH_DATA", str(tmp_path / "data"))  # no trained student there
    monkeypatch.setattr("distill.paths.shipped_student", lambda: None)  # a checkout without models/
    rc = encode.main(
        [
            "--quick",
            "--out",
            str(tmp_path),
            "--teacher",
            str(tiny_model_dir),
            "--assistant",
            str(tiny_model_dir),
            "--variants",
            "assistant,student",
            "--sentences",
            "8",
            "--batch1-sentences",
            "2",
            "--batch-sizes",
            "8",
            "--rss",
            "none",
        ]
    )
    assert rc == 0
    data = _load(tmp_path / "encode-quick.json")
    assert data["headline"]["student_vs_assistant_ratio"] is None
    assert any("no student" in n for n in data["notes"])


def test_quality_quick(tmp_path, tiny_model_dir, tiny_model_dir_b, shared_data):
    argv = ["--quick", "--out", str(tmp_path), "--assistant", str(tiny_model_dir)]
    argv += ["--student", str(tiny_model_dir_b), "--backends", "torch,int8", "--questions", "3"]
    assert quality.main(argv + ["--paragraphs", "4", "--threads", "1"]) == 0
    data = _load(tmp_path / "quality-quick.json")
    variants = data["results"]["variants"]
    assert set(variants) == {
        "A-torch",
        "A-int8",
        "S-torch",
        "S-int8",
        "S-torch -> A index",
        "S-int8 -> A index",
    }
    assert data["config"]["questions"] == 3 * 11 and data["config"]["paragraphs"] == 4 * 12
    for name, row in variants.items():
        assert 0 <= row["xling_r@1"] <= 1 and 0 <= row["ndcg@10"] <= 1, name
    assert variants["S-int8 -> A index"]["index"] == "A" and variants["S-int8"]["index"] == "S"
    assert data["headline"]["A-torch"] == variants["A-torch"]["xling_r@1"]
    assert "vs torch" in data["tables"]["question task"]


def test_quality_rejects_an_unknown_backend(tmp_path, capsys):
    from benchmarks.common import run_main

    assert run_main(quality.main, ["--quick", "--out", str(tmp_path), "--backends", "torch,gpu"]) == 2
    assert "gpu" in capsys.readouterr().err


def test_index_quick(tmp_path, tiny_model_dir_b, shared_data):
    rc = index.main(
        [
            "--quick",
            "--out",
            str(tmp_path),
            "--model",
            str(tiny_model_dir_b),
            "--sizes",
            "300",
            "--e2e-docs",
            "20",
            "--workdir",
            str(tmp_path),
        ]
    )
    assert rc == 0
    data = _load(tmp_path / "index-quick.json")
    cost = data["results"]["indexer_cost"]["300"]
    from benchmarks.stores import available

    types = {"flat", "hnsw", "ivfpq"} | (
        {"milvus:flat", "milvus:hnsw"} if available(["milvus"])[0] else set()
    )
    assert set(cost) == types  # the Milvus Lite store beside FAISS, in the same run
    for row in cost.values():
        assert row["chunks"] >= 300 and _finite_positive(row["docs_per_s"])
        assert _finite_positive(row["index_bytes_per_vector"])
    # A flat index stores the float32 vector itself: at least dim * 4 bytes per vector.
    assert cost["flat"]["index_bytes_per_vector"] >= 32 * 4
    e2e = data["results"]["end_to_end"]["rows"]
    assert set(e2e) == types | {"bare encode"}
    assert e2e["bare encode"]["vs_bare_encode"] == 1.0


def test_app_quick(tmp_path, tiny_model_dir, tiny_model_dir_b, shared_data):
    rc = app.main(
        [
            "--quick",
            "--out",
            str(tmp_path),
            "--teacher",
            str(tiny_model_dir),
            "--student",
            str(tiny_model_dir_b),
            "--queries",
            "12",
            "--docs",
            "12",
            "--backend",
            "int8",
        ]
    )
    assert rc == 0
    data = _load(tmp_path / "app-quick.json")
    assert data["headline"]["backends"] == {
        "teacher": "int8",
        "student": "int8",
    }  # what the collection records
    res = data["results"]["1"]
    for role in ("teacher", "student"):
        assert _finite_positive(res[f"{role}: search"]["p50_ms"])
        assert _finite_positive(res[f"{role}: query embedding only"]["p50_ms"])
        assert res[f"{role}: search"]["queries"] == 12
    assert _finite_positive(data["headline"]["student_speedup_t1"])
    assert data["config"]["built"] is True


def test_bad_option_is_a_clear_error(tmp_path, capsys):
    from benchmarks.common import run_main

    assert run_main(search.main, ["--quick", "--out", str(tmp_path), "--families", "lsh"]) == 2
    assert "unknown index family" in capsys.readouterr().err


def test_statistics_helpers():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert isinstance(s, Summary) and s.median == 3.0 and s.min == 1.0 and s.max == 100.0
    assert paired_ratios([2.0, 4.0, 6.0], [1.0, 2.0, 2.0]).median == 2.0
    order: list[str] = []
    secs = interleave(
        {"a": lambda r: order.append(f"a{r}"), "b": lambda r: order.append(f"b{r}")}, 3, warmup=1
    )
    assert order == ["a0", "b0", "a0", "b0", "b1", "a1", "a2", "b2"]  # warm-up, then rotating rounds
    assert all(len(v) == 3 for v in secs.values())
    table = markdown_table([{"x": 1.23456, "y": None}], [("x", "X", 3), ("y", "Y")])
    assert table.splitlines()[2] == "| 1.235 | - |"


def test_int8_keeps_ffn_output_projections_in_fp32(tiny_model_dir):
    from distill.models import load_encoder
    from distill.models.backends import is_ffn_output, quantize_int8

    q = quantize_int8(load_encoder(str(tiny_model_dir)).model)
    linear = {name: type(m).__module__ for name, m in q.named_modules() if type(m).__name__ == "Linear"}
    ffn_out = {n for n in linear if is_ffn_output(n)}
    assert ffn_out and all("quantized" not in linear[n] for n in ffn_out)
    assert all("quantized" in linear[n] for n in set(linear) - ffn_out)
    assert is_ffn_output("layers.2.output.dense") and not is_ffn_output("layers.2.attention.output.dense")


@pytest.mark.milvus_server
def test_search_stores_include_a_milvus_server(tmp_path, milvus_server, monkeypatch):
    from support.milvus import use_server

    use_server(monkeypatch, milvus_server)
    args = ["--quick", "--out", str(tmp_path), "--sizes", "2000", "--queries", "20", "--families", "hnsw"]
    args += ["--real-model", "none", "--stores", "faiss,milvus-server", "--milvus-uri", milvus_server.uri]
    assert search.main(args) == 0
    data = _load(tmp_path / "search-quick.json")
    rows = {r["store"]: r for r in data["results"]["stores"]}
    assert set(rows) == {"faiss flat", "faiss hnsw", "milvus-server flat", "milvus-server hnsw"}
    assert rows["milvus-server flat"]["recall@10"] == 1.0 and rows["milvus-server hnsw"]["recall@10"] >= 0.9
    for r in rows.values():
        assert r["vectors"] == 2000 and _finite_positive(r["p50_ms"]) and r["p95_ms"] >= r["p50_ms"]
