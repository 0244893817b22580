"""Encode benchmark: sentences/s, peak memory and size of every model on every backend.

All models embed the same real sentences (2,000 by default, mixed languages from FLORES-200 devtest
and NTREX-128, fixed seed) at batch 64 and batch 1 (a 300-sentence subset), with 1 and 2 threads.
Models: teacher T (all-MiniLM-L6-v2), assistant A (multilingual-e5-small, the app's teacher),
student S (the one the demo serves, `distill.paths.default_student()`, or --student). Each runs on every
backend of `distill.models.Backend`, loaded exactly as the product loads it: `torch` (fp32), `int8`
(dynamic int8, FFN output projections fp32), `onnx` and `onnx-int8` (ONNX Runtime, when installed;
exported into the model's cache on first use). A backend the product refuses for a model (below
cosine 0.995 to fp32 on its check texts) is listed under `refused` and not timed. Within each
(threads, batch) setting the workload is cut into rounds and the variants alternate round by round,
after a warm-up; throughput is the median over rounds, and ratios (e.g. S / A) are medians of
per-round ratios. Peak RSS is measured in a fresh subprocess per variant (model load + encoding).

Headline (batch 64, the most threads): each model's best backend (the fastest with mean cosine to
its fp32 >= 0.995), `student_best_vs_assistant_fp32` = S on its best backend / A on torch fp32, and
`student_best_vs_assistant_same_backend` = S / A both on that backend; `student_vs_assistant_ratio`
is S / A both on torch fp32.

Examples:
  python -m benchmarks.encode                                  # full run (~5 min on 2 cores)
  python -m benchmarks.encode --quick                          # 200 sentences, 2 rounds
  python -m benchmarks.encode --student data/students/offline-full --threads 2 --batch-sizes 64
  python -m benchmarks.encode --variants assistant,student,student-int8 --onnx off
  python -m benchmarks.encode --student pkg:all-MiniLM-L6-v2 --sentences 300 --batch1-sentences 20
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import (
    ASSISTANT_SPEC,
    TEACHER_SPEC,
    BenchmarkError,
    LoadMonitor,
    base_parser,
    default_student,
    interleave,
    log,
    markdown_table,
    paired_ratios,
    peak_rss_bytes,
    rss_bytes,
    run_main,
    set_threads,
    summarize,
    write_results,
)
from benchmarks.workloads import mixed_sentences
from distill.models.backends import MIN_COSINE, BackendError

MODELS = ("teacher", "assistant", "student")
BACKENDS = ("", "-int8", "-onnx", "-onnx-int8")  # torch fp32, then distill.models.Backend's others
ALL_VARIANTS = tuple(m + b for m in MODELS for b in BACKENDS)
PREFIX = "query"  # symmetric use, as in bitext retrieval; e5-style models prepend "query: "
# High-resource languages (the paper's 12 plus English): where a student with a vocabulary trimmed to
# few languages tokenises like A, so its speed there is reported apart from the 44-language mix.
FOCUS_LANGS = "en,de,es,fr,it,nl,ar,tr,ru,zh,ja,pl,pt"
DEFAULT_RSS = "all"


# ---------------------------------------------------------------------------------------------
# Variants: a model on a backend, loaded as the product loads it (`load_encoder(spec, backend=)`)


def state_dict_bytes(model) -> int:
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model.state_dict(), buf)
    return buf.tell()


@dataclass
class Variant:
    name: str
    spec: str
    encoder: object  # distill Encoder (its model a torch module or an OnnxModel)
    params: int
    bytes_on_disk: int
    tokens_per_sentence: float = 0.0
    rss: dict = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return self.name.split("-")[0]

    @property
    def backend(self) -> str:
        return self.name[len(self.model_name) + 1 :] or "torch"

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        return self.encoder.encode(texts, batch_size=batch_size, prefix=PREFIX)


def weight_bytes(path: Path) -> int:
    """The torch weights of a model directory (not its exported ONNX files)."""
    files = [p for p in path.rglob("*") if p.suffix in (".safetensors", ".bin", ".pt") and p.is_file()]
    return sum(p.stat().st_size for p in files)


def count_params(model) -> int:
    seen, total = set(), 0
    for p in model.parameters():  # tied weights count once
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel()
    return total


def int8_params(model) -> int:
    """Parameters of a dynamically quantised model (packed Linear weights are not nn.Parameters)."""
    total = count_params(model)
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if callable(weight) and type(module).__name__ == "Linear" and "quantized" in type(module).__module__:
            total += module.weight().numel() + (module.bias().numel() if module.bias() is not None else 0)
    return total


def onnx_params(path: Path) -> int:
    """Weights stored in an ONNX graph (its initializers; int8 graphs add their scales)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return int(sum(np.prod(init.dims) for init in graph.initializer))


def build_variant(name: str, specs: dict[str, str]) -> Variant:
    """Load one variant as the product would; BackendError when the backend refuses the model."""
    from distill.models import ModelNotFoundError, load_encoder, resolve_model

    base_name = name.split("-")[0]
    spec = specs[base_name]
    backend = name[len(base_name) + 1 :] or "torch"
    try:
        enc = load_encoder(spec, backend=backend, device="cpu")
    except ModelNotFoundError as exc:
        raise BenchmarkError(f"cannot load {base_name} {spec!r}: {exc}") from None
    if backend == "torch":
        return Variant(name, spec, enc, count_params(enc.model), weight_bytes(resolve_model(spec)))
    if backend == "int8":
        return Variant(name, spec, enc, int8_params(enc.model), state_dict_bytes(enc.model))
    path = enc.model.path
    return Variant(name, spec, enc, onnx_params(path), path.stat().st_size)


# ---------------------------------------------------------------------------------------------
# Peak memory in a fresh process


def probe_rss(args) -> int:
    """Child-process entry: load one variant, encode the probe texts, print RSS figures as JSON."""
    import torch  # noqa: F401  (imported before the baseline so it is part of it)
    import transformers  # noqa: F401

    set_threads(args.probe_threads)
    texts = json.loads(Path(args.probe_texts).read_text(encoding="utf-8"))
    baseline = rss_bytes()
    specs = json.loads(args.probe_specs)
    variant = build_variant(args.probe_rss, specs)  # ONNX files come from the cache the parent filled
    loaded = rss_bytes()
    variant.encode(texts, 64)
    print(
        json.dumps(
            {
                "baseline_mb": baseline / 2**20,
                "after_load_mb": loaded / 2**20,
                "peak_mb": peak_rss_bytes() / 2**20,
            }
        )
    )
    return 0


def measure_rss(name: str, specs: dict[str, str], texts: list[str], threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(texts, fh, ensure_ascii=False)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.encode",
        "--probe-rss",
        name,
        "--probe-texts",
        fh.name,
        "--probe-specs",
        json.dumps(specs),
        "--probe-threads",
        str(threads),
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    finally:
        Path(fh.name).unlink(missing_ok=True)
    if out.returncode != 0:
        log(f"  rss probe for {name} failed: {out.stderr.strip().splitlines()[-1:]}")
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["model_mb"] = data["peak_mb"] - data["baseline_mb"]
    return {k: round(v, 1) for k, v in data.items()}


# ---------------------------------------------------------------------------------------------


def run_setting(
    variants: list[Variant],
    texts: list[str],
    *,
    batch: int,
    threads: int,
    rounds: int,
    keep: dict | None = None,
) -> dict[str, list[float]]:
    """Interleaved rounds: every variant encodes the same slice of `texts` per round. Returns sent/s per round."""
    set_threads(threads)  # ONNX Runtime sessions follow torch's thread count
    chunks = [list(c) for c in np.array_split(np.array(texts, dtype=object), rounds)]
    warm = texts[: max(batch, 8) if batch > 1 else 8]
    for v in variants:
        v.encode(warm, batch)

    def job(v: Variant) -> Callable[[int], None]:
        def run(r: int) -> None:
            emb = v.encode(chunks[r], batch)
            if keep is not None:
                keep.setdefault(v.name, {})[r] = emb

        return run

    seconds = interleave(
        {v.name: job(v) for v in variants},
        rounds,
        warmup=0,
        progress=lambda m: log(f"  threads={threads} batch={batch}: {m}"),
    )
    return {name: [len(chunks[r]) / s for r, s in enumerate(secs)] for name, secs in seconds.items()}


def cosine_agreement(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> dict:
    x = np.concatenate([a[r] for r in sorted(a)])
    y = np.concatenate([b[r] for r in sorted(b)])
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
    return {
        "mean": round(float(cos.mean()), 5),
        "min": round(float(cos.min()), 5),
        "p5": round(float(np.percentile(cos, 5)), 5),
    }


def token_counts(variants: list[Variant], sents, focus: Sequence[str]) -> dict:
    """Tokens per sentence of each base model by language: a trimmed vocabulary shows up here."""
    by_model: dict[str, dict[str, float]] = {}
    for v in variants:
        if "-" in v.name:
            continue
        enc = v.encoder
        lengths = [
            len(ids)
            for ids in enc.tokenizer(
                [enc.prompt(PREFIX) + t for t in sents.texts], truncation=True, max_length=enc.max_seq_length
            )["input_ids"]
        ]
        per_lang: dict[str, list[int]] = {}
        for lang, n in zip(sents.langs, lengths, strict=True):
            per_lang.setdefault(lang, []).append(n)
        by_model[v.name] = {lang: round(float(np.mean(x)), 1) for lang, x in sorted(per_lang.items())}
        by_model[v.name]["_all"] = round(float(np.mean(lengths)), 1)
    out: dict = {"per_language": by_model}
    if "student" in by_model and "assistant" in by_model:
        s, a = by_model["student"], by_model["assistant"]
        in_focus = [lang for lang in a if lang in set(focus)]
        others = [lang for lang in a if lang != "_all" and lang not in set(focus)]

        def ratio(langs: list[str]) -> float | None:
            return round(float(np.mean([s[x] / a[x] for x in langs])), 3) if langs else None

        out["student_over_assistant"] = {
            "all": round(s["_all"] / a["_all"], 3),
            "focus_langs": ratio(in_focus),
            "other_langs": ratio(others),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("encode", __doc__)
    parser.add_argument("--teacher", default=TEACHER_SPEC, help="teacher T spec (default: %(default)s)")
    parser.add_argument("--assistant", default=ASSISTANT_SPEC, help="assistant A spec (default: %(default)s)")
    parser.add_argument(
        "--student",
        help="student S spec (default: the student the demo serves, distill.paths.default_student())",
    )
    parser.add_argument(
        "--variants", help=f"comma list from {', '.join(ALL_VARIANTS)} (default: all available)"
    )
    parser.add_argument(
        "--onnx",
        choices=("auto", "on", "off"),
        default="auto",
        help="the onnx and onnx-int8 variants: auto = when onnxruntime is installed (default: %(default)s)",
    )
    parser.add_argument("--sentences", type=int, help="sentences for batch 64 (default 2000; quick 200)")
    parser.add_argument("--batch1-sentences", type=int, help="subset for batch 1 (default 300; quick 40)")
    parser.add_argument("--batch-sizes", default="64,1", help="(default: %(default)s)")
    parser.add_argument("--threads", help="thread counts (default 1,2; quick 1)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per setting (default 5; quick 2)")
    parser.add_argument(
        "--focus-langs",
        default="",
        help="languages of an extra batch-64 run of A and S variants, on sentences in these languages "
        f"only, e.g. {FOCUS_LANGS} for a student whose vocabulary covers few languages "
        "(default: skipped)",
    )
    parser.add_argument(
        "--rss",
        help="variants whose peak RSS to measure in a subprocess: all, none or a comma "
        f"list (default {DEFAULT_RSS}; quick: assistant,student,student-onnx-int8). ONNX files are "
        "exported before, so the rows are what a loaded model costs",
    )
    # Internal: the peak-RSS child process.
    parser.add_argument("--probe-rss", help=argparse_hidden())
    parser.add_argument("--probe-texts", help=argparse_hidden())
    parser.add_argument("--probe-specs", help=argparse_hidden())
    parser.add_argument("--probe-threads", type=int, default=2, help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.probe_rss:
        return probe_rss(args)

    n_sent = args.sentences or (200 if args.quick else 2000)
    n_b1 = args.batch1_sentences or (40 if args.quick else 300)
    rounds = args.rounds or (2 if args.quick else 5)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    thread_list = [int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(",") if t.strip()]
    if rounds < 1 or n_sent < rounds or n_b1 < rounds or not batch_sizes or not thread_list:
        raise BenchmarkError("need rounds >= 1, at least `rounds` sentences, batch sizes and thread counts")

    notes: list[str] = []
    student = args.student or default_student()
    if student is None:
        notes.append(
            "no student: distill.paths.default_student() does not exist yet (pass --student); "
            "student variants skipped"
        )
    specs = {"teacher": args.teacher, "assistant": args.assistant}
    if student:
        specs["student"] = student
    onnx_ok = False
    if args.onnx != "off":
        try:
            import onnxruntime  # noqa: F401

            onnx_ok = True
        except ImportError:
            if args.onnx == "on":
                raise BenchmarkError("--onnx on needs onnxruntime: pip install onnxruntime") from None
            notes.append("ONNX variants skipped: onnxruntime is not installed (pip install onnxruntime onnx)")
    wanted = [v.strip() for v in args.variants.split(",")] if args.variants else list(ALL_VARIANTS)
    for v in wanted:
        if v not in ALL_VARIANTS:
            raise BenchmarkError(f"unknown variant {v!r}; choose from {', '.join(ALL_VARIANTS)}")
    names = [v for v in wanted if v.split("-")[0] in specs and ("-onnx" not in v or onnx_ok)]

    load = LoadMonitor()
    sents = mixed_sentences(n_sent, seed=args.seed)
    texts = sents.texts
    b1_texts = texts[:n_b1]
    log(f"{len(texts)} sentences in {len(sents.lang_counts())} languages; variants: {', '.join(names)}")

    variants: list[Variant] = []
    refused: dict[str, str] = {}
    set_threads(max(thread_list))
    for name in names:
        t0 = time.perf_counter()
        try:
            variants.append(build_variant(name, specs))
        except BackendError as exc:  # refused (below cosine 0.995 on the check texts) or not exportable
            refused[name] = str(exc)
            notes.append(f"{name} not measured: {exc}"[:400])
            log(notes[-1])
            continue
        log(f"  {name}: ready in {time.perf_counter() - t0:.1f} s (first ONNX use includes the export)")
    for v in variants:
        tok = v.encoder.tokenize(texts[:500], PREFIX)
        v.tokens_per_sentence = float(tok["attention_mask"].sum()) / min(500, len(texts))

    throughput: dict[str, dict] = {}
    kept: dict = {}
    for threads in thread_list:
        for batch in batch_sizes:
            work = texts if batch > 1 else b1_texts
            log(
                f"threads={threads} batch={batch}: {len(work)} sentences x {len(variants)} variants, {rounds} rounds"
            )
            keep = kept if (threads == max(thread_list) and batch == max(batch_sizes)) else None
            throughput[f"t{threads}_b{batch}"] = {
                "threads": threads,
                "batch": batch,
                "sentences": len(work),
                "per_round": run_setting(
                    variants, work, batch=batch, threads=threads, rounds=rounds, keep=keep
                ),
            }
    focus = [x.strip() for x in args.focus_langs.split(",") if x.strip()]
    focus_variants = [v for v in variants if v.name == "assistant" or v.name.startswith("student")]
    if focus and "student" in specs and len(focus_variants) > 1:
        focus_sents = mixed_sentences(n_sent, seed=args.seed, langs=focus)
        threads, batch = max(thread_list), max(batch_sizes)
        log(
            f"focus languages ({len(focus)}): threads={threads} batch={batch}, {len(focus_sents.texts)} sentences"
        )
        throughput[f"t{threads}_b{batch}_focus"] = {
            "threads": threads,
            "batch": batch,
            "sentences": len(focus_sents.texts),
            "langs": focus,
            "per_round": run_setting(
                focus_variants, focus_sents.texts, batch=batch, threads=threads, rounds=rounds
            ),
        }
    token_stats = token_counts(variants, sents, focus)

    # Peak RSS: one fresh process per variant, after the timing so it cannot disturb it.
    probe = sorted(texts, key=len, reverse=True)[:192]  # the longest batches set the activation peak
    rss_spec = args.rss or ("assistant,student,student-onnx-int8" if args.quick else DEFAULT_RSS)
    rss_names = (
        {v.name for v in variants}
        if rss_spec == "all"
        else set()
        if rss_spec == "none"
        else set(rss_spec.split(","))
    )
    for v in variants:
        if v.name in rss_names:
            log(f"peak RSS of {v.name} (subprocess)")
            v.rss = measure_rss(v.name, specs, probe, max(thread_list))

    # ---- results
    rows, results_settings = [], {}
    for key, setting in throughput.items():
        per_round = setting["per_round"]
        summ = {name: summarize(vals) for name, vals in per_round.items()}
        ratios = {}
        if "assistant" in per_round:
            for name in per_round:
                if name != "assistant":
                    ratios[f"{name}_vs_assistant"] = paired_ratios(per_round[name], per_round["assistant"])
        results_settings[key] = {
            "threads": setting["threads"],
            "batch": setting["batch"],
            "sentences": setting["sentences"],
            "langs": setting.get("langs", "all"),
            "sentences_per_s": {n: s.to_dict(digits=2) for n, s in summ.items()},
            "per_round_sentences_per_s": {n: [round(x, 2) for x in vals] for n, vals in per_round.items()},
            "ratios_vs_assistant": {n: r.to_dict(digits=3) for n, r in ratios.items()},
        }
        for v in variants:
            if v.name not in summ:
                continue
            s = summ[v.name]
            r = ratios.get(f"{v.name}_vs_assistant")
            rows.append(
                {
                    "threads": setting["threads"],
                    "batch": setting["batch"],
                    "langs": "focus" if "langs" in setting else "all",
                    "variant": v.name,
                    "sps": s.median,
                    "spread": s.spread_pct,
                    "ratio": r.median if r else 1.0 if v.name == "assistant" else None,
                    "ratio_spread": f"{r.p5:.2f}-{r.p95:.2f}" if r else "",
                }
            )
    speed_table = markdown_table(
        rows,
        [
            ("threads", "threads"),
            ("batch", "batch"),
            ("langs", "languages"),
            ("variant", "variant"),
            ("sps", "sentences/s (median)", 1),
            ("spread", "spread % (p5-p95)", 0),
            ("ratio", "x assistant", 2),
            ("ratio_spread", "ratio p5-p95"),
        ],
    )
    quality: dict[str, dict] = {}
    for v in variants:
        if "-" in v.name:
            base = v.name.split("-")[0]
            if v.name in kept and base in kept:
                quality[v.name] = cosine_agreement(kept[v.name], kept[base])
    size_rows = []
    a_params = next((v.params for v in variants if v.name == "assistant"), None)
    for v in variants:
        size_rows.append(
            {
                "variant": v.name,
                "spec": v.spec,
                "params_m": v.params / 1e6,
                "params_vs_assistant": v.params / a_params if a_params else None,
                "disk_mb": v.bytes_on_disk / 2**20,
                "peak_rss_mb": v.rss.get("peak_mb"),
                "model_rss_mb": v.rss.get("model_mb"),
                "tokens": v.tokens_per_sentence,
                "cos_to_fp32": quality.get(v.name, {}).get("mean"),
                "cos_min": quality.get(v.name, {}).get("min"),
            }
        )
    size_table = markdown_table(
        size_rows,
        [
            ("variant", "variant"),
            ("params_m", "params (M)", 1),
            ("params_vs_assistant", "x assistant params", 2),
            ("disk_mb", "weights MB", 0),
            ("peak_rss_mb", "peak RSS MB", 0),
            ("model_rss_mb", "RSS over baseline MB", 0),
            ("tokens", "tokens/sentence", 1),
            ("cos_to_fp32", "cos to fp32 (mean)", 4),
            ("cos_min", "cos (min)", 4),
        ],
    )
    print(
        f"\n### Encode speed ({len(texts)} sentences at batch 64, {len(b1_texts)} at batch 1; "
        f"{len(sents.lang_counts())} languages)\n\n{speed_table}\n",
        flush=True,
    )
    print(f"\n### Encoder size and memory\n\n{size_table}\n", flush=True)

    def ratio_of(name: str, threads: int) -> float | None:
        key = f"t{threads}_b{max(batch_sizes)}"
        r = results_settings.get(key, {}).get("ratios_vs_assistant", {}).get(f"{name}_vs_assistant")
        return r["median"] if r else None

    top_threads = max(thread_list)
    headline = {
        "student_vs_assistant_ratio": ratio_of("student", top_threads),
        "ratio_setting": {"batch": max(batch_sizes), "threads": top_threads},
        "ratios": {
            name: {str(t): ratio_of(name, t) for t in thread_list}
            for name in [v.name for v in variants if v.name != "assistant"]
        },
        "expectation_student_ge_2x_assistant": None,
        "student_vs_assistant_ratio_focus_langs": (
            results_settings.get(f"t{top_threads}_b{max(batch_sizes)}_focus", {})
            .get("ratios_vs_assistant", {})
            .get("student_vs_assistant", {})
            .get("median")
        ),
        "student_tokens_per_assistant_token": token_stats.get("student_over_assistant"),
    }
    if headline["student_vs_assistant_ratio"] is not None:
        headline["expectation_student_ge_2x_assistant"] = headline["student_vs_assistant_ratio"] >= 2.0
    # Each model's best backend: the fastest variant at the headline setting whose mean cosine to its
    # fp32 stays >= MIN_COSINE (refused variants never ran). Then the two headline ratios.
    top = throughput.get(f"t{top_threads}_b{max(batch_sizes)}", {}).get("per_round", {})
    best: dict[str, dict] = {}
    for model in MODELS:
        usable = [
            v
            for v in variants
            if v.model_name == model
            and v.name in top
            and (v.backend == "torch" or quality.get(v.name, {}).get("mean", 0.0) >= MIN_COSINE)
        ]
        if not usable:
            continue
        pick = max(usable, key=lambda v: float(np.median(top[v.name])))
        own = paired_ratios(top[pick.name], top[model]).median if model in top else None
        best[model] = {
            "backend": pick.backend,
            "variant": pick.name,
            "x_own_fp32": round(own, 3) if own else None,
            "cos_to_fp32": quality.get(pick.name, {}).get("mean", 1.0),
        }
    headline["best_backend"] = best
    headline["refused"] = refused
    if "student" in best:
        pick = best["student"]
        same = f"assistant{'' if pick['backend'] == 'torch' else '-' + pick['backend']}"
        headline["student_best_vs_assistant_fp32"] = ratio_of(pick["variant"], top_threads)
        headline["student_best_vs_assistant_same_backend"] = (
            round(paired_ratios(top[pick["variant"]], top[same]).median, 3) if same in top else None
        )
        headline["student_best_backend"] = pick["backend"]
        print(
            f"headline: student on {pick['backend']} runs {headline['student_best_vs_assistant_fp32']}x the "
            f"assistant on torch fp32 and {headline['student_best_vs_assistant_same_backend']}x the assistant on "
            f"{pick['backend']} (batch {max(batch_sizes)}, {top_threads} threads)",
            flush=True,
        )
    for model, pick in best.items():
        print(
            f"best backend of {model}: {pick['backend']} ({pick['x_own_fp32']}x its fp32, cosine {pick['cos_to_fp32']})",
            flush=True,
        )
    config = {
        "specs": specs,
        "variants": [v.name for v in variants],
        "sentences": len(texts),
        "batch1_sentences": len(b1_texts),
        "languages": sents.lang_counts(),
        "source": sents.source,
        "prefix": PREFIX,
        "batch_sizes": batch_sizes,
        "threads": thread_list,
        "rounds": rounds,
        "rss_probe": f"{len(probe)} longest sentences at batch 64, fresh process",
    }
    results = {
        "settings": results_settings,
        "tokens": token_stats,
        "models": {r["variant"]: r for r in size_rows},
        "int8_onnx_agreement_with_fp32": quality,
    }
    path = write_results(
        "encode",
        args=args,
        config=config,
        results=results,
        headline=headline,
        load=load,
        tables={"speed": speed_table, "size": size_table},
        notes=notes,
    )
    log(f"wrote {path}")
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    raise SystemExit(run_main(main))
