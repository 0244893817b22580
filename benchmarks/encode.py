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

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.common import (
    STUDENT_HELP,
    BenchmarkError,
    LoadMonitor,
    base_parser,
    finish,
    interleave,
    log,
    markdown_table,
    paired_ratios,
    parse_ints,
    rounds_of,
    run_main,
    set_threads,
    student_or_note,
    summarize,
    thread_list,
)
from benchmarks.variants import PREFIX, Variant, build_variant, measure_rss, probe_rss
from benchmarks.workloads import mixed_sentences
from distill.datasets import ASSISTANT_SPEC, TEACHER_SPEC
from distill.models.backends import MIN_COSINE, BackendError

MODELS = ("teacher", "assistant", "student")
BACKENDS = ("", "-int8", "-onnx", "-onnx-int8")  # torch fp32, then distill.models.Backend's others
ALL_VARIANTS = tuple(m + b for m in MODELS for b in BACKENDS)
# High-resource languages (the paper's 12 plus English): where a student with a vocabulary trimmed to
# few languages tokenises like A, so its speed there is reported apart from the 44-language mix.
FOCUS_LANGS = "en,de,es,fr,it,nl,ar,tr,ru,zh,ja,pl,pt"
DEFAULT_RSS = "all"


# ---------------------------------------------------------------------------------------------
# Timing


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


def _parser():
    parser = base_parser("encode", __doc__)
    parser.add_argument("--teacher", default=TEACHER_SPEC, help="teacher T spec (default: %(default)s)")
    parser.add_argument("--assistant", default=ASSISTANT_SPEC, help="assistant A spec (default: %(default)s)")
    parser.add_argument("--student", help=STUDENT_HELP)
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
    parser.add_argument("--probe-rss", help=argparse.SUPPRESS)
    parser.add_argument("--probe-texts", help=argparse.SUPPRESS)
    parser.add_argument("--probe-specs", help=argparse.SUPPRESS)
    parser.add_argument("--probe-threads", type=int, default=2, help=argparse.SUPPRESS)
    return parser


@dataclass
class Plan:
    """What one run measures, from the arguments."""

    specs: dict[str, str]
    names: list[str]  # the variants to load
    n_sent: int
    n_b1: int
    rounds: int
    batch_sizes: list[int]
    threads: list[int]
    notes: list[str]

    @property
    def top(self) -> tuple[int, int]:
        """The headline setting: (the most threads, the largest batch)."""
        return max(self.threads), max(self.batch_sizes)


def _onnx_available(mode: str, notes: list[str]) -> bool:
    if mode == "off":
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        if mode == "on":
            raise BenchmarkError("--onnx on needs onnxruntime: pip install onnxruntime") from None
        notes.append("ONNX variants skipped: onnxruntime is not installed (pip install onnxruntime onnx)")
        return False
    return True


def _plan(args) -> Plan:
    n_sent = args.sentences or (200 if args.quick else 2000)
    n_b1 = args.batch1_sentences or (40 if args.quick else 300)
    rounds = rounds_of(args)
    batch_sizes, threads = parse_ints(args.batch_sizes), thread_list(args.threads, args.quick)
    if rounds < 1 or n_sent < rounds or n_b1 < rounds or not batch_sizes or not threads:
        raise BenchmarkError("need rounds >= 1, at least `rounds` sentences, batch sizes and thread counts")
    notes: list[str] = []
    student = student_or_note(
        args.student,
        notes,
        "no student: distill.paths.default_student() does not exist yet (pass --student); "
        "student variants skipped",
    )
    specs = {"teacher": args.teacher, "assistant": args.assistant}
    if student:
        specs["student"] = student
    onnx_ok = _onnx_available(args.onnx, notes)
    wanted = [v.strip() for v in args.variants.split(",")] if args.variants else list(ALL_VARIANTS)
    for v in wanted:
        if v not in ALL_VARIANTS:
            raise BenchmarkError(f"unknown variant {v!r}; choose from {', '.join(ALL_VARIANTS)}")
    names = [v for v in wanted if v.split("-")[0] in specs and ("-onnx" not in v or onnx_ok)]
    return Plan(specs, names, n_sent, n_b1, rounds, batch_sizes, threads, notes)


def _load_variants(plan: Plan, texts: list[str]) -> tuple[list[Variant], dict[str, str]]:
    """The variants the product accepts, and the refused ones with the reason."""
    variants: list[Variant] = []
    refused: dict[str, str] = {}
    set_threads(max(plan.threads))
    for name in plan.names:
        t0 = time.perf_counter()
        try:
            variants.append(build_variant(name, plan.specs))
        except BackendError as exc:  # refused (below cosine 0.995 on the check texts) or not exportable
            refused[name] = str(exc)
            plan.notes.append(f"{name} not measured: {exc}"[:400])
            log(plan.notes[-1])
            continue
        log(f"  {name}: ready in {time.perf_counter() - t0:.1f} s (first ONNX use includes the export)")
    for v in variants:
        tok = v.encoder.tokenize(texts[:500], PREFIX)
        v.tokens_per_sentence = float(tok["attention_mask"].sum()) / min(500, len(texts))
    return variants, refused


def _throughput(plan: Plan, variants: list[Variant], texts: list[str], kept: dict) -> dict[str, dict]:
    """Every (threads, batch) setting; the headline setting's vectors go into `kept`."""
    throughput: dict[str, dict] = {}
    for threads in plan.threads:
        for batch in plan.batch_sizes:
            work = texts if batch > 1 else texts[: plan.n_b1]
            log(
                f"threads={threads} batch={batch}: {len(work)} sentences x {len(variants)} variants, "
                f"{plan.rounds} rounds"
            )
            keep = kept if (threads, batch) == plan.top else None
            throughput[f"t{threads}_b{batch}"] = {
                "threads": threads,
                "batch": batch,
                "sentences": len(work),
                "per_round": run_setting(
                    variants, work, batch=batch, threads=threads, rounds=plan.rounds, keep=keep
                ),
            }
    return throughput


def _focus_setting(plan: Plan, variants: list[Variant], focus: list[str], seed: int) -> dict | None:
    """A and S at the headline setting on sentences in the focus languages only."""
    focus_variants = [v for v in variants if v.name == "assistant" or v.name.startswith("student")]
    if not (focus and "student" in plan.specs and len(focus_variants) > 1):
        return None
    focus_sents = mixed_sentences(plan.n_sent, seed=seed, langs=focus)
    threads, batch = plan.top
    log(
        f"focus languages ({len(focus)}): threads={threads} batch={batch}, {len(focus_sents.texts)} sentences"
    )
    return {
        "threads": threads,
        "batch": batch,
        "sentences": len(focus_sents.texts),
        "langs": focus,
        "per_round": run_setting(
            focus_variants, focus_sents.texts, batch=batch, threads=threads, rounds=plan.rounds
        ),
    }


def _measure_rss(args, plan: Plan, variants: list[Variant], probe: list[str]) -> None:
    """Peak RSS: one fresh process per chosen variant, after the timing so it cannot disturb it."""
    rss_spec = args.rss or ("assistant,student,student-onnx-int8" if args.quick else DEFAULT_RSS)
    if rss_spec == "all":
        rss_names = {v.name for v in variants}
    else:
        rss_names = set() if rss_spec == "none" else set(rss_spec.split(","))
    for v in variants:
        if v.name in rss_names:
            log(f"peak RSS of {v.name} (subprocess)")
            v.rss = measure_rss(v.name, plan.specs, probe, max(plan.threads))


def _ratios(per_round: dict[str, list[float]]) -> dict:
    """`{variant}_vs_assistant`: per-round ratios of each variant's throughput to A's."""
    if "assistant" not in per_round:
        return {}
    return {
        f"{name}_vs_assistant": paired_ratios(vals, per_round["assistant"])
        for name, vals in per_round.items()
        if name != "assistant"
    }


def _speed_rows(throughput: dict, variants: list[Variant]) -> tuple[list[dict], dict]:
    """The speed table's rows, and the results per setting."""
    rows, results_settings = [], {}
    for key, setting in throughput.items():
        per_round = setting["per_round"]
        summ = {name: summarize(vals) for name, vals in per_round.items()}
        ratios = _ratios(per_round)
        results_settings[key] = {
            "threads": setting["threads"],
            "batch": setting["batch"],
            "sentences": setting["sentences"],
            "langs": setting.get("langs", "all"),
            "sentences_per_s": {n: s.to_dict(digits=2) for n, s in summ.items()},
            "per_round_sentences_per_s": {n: [round(x, 2) for x in vals] for n, vals in per_round.items()},
            "ratios_vs_assistant": {n: r.to_dict(digits=3) for n, r in ratios.items()},
        }
        for v in [v for v in variants if v.name in summ]:
            s, r = summ[v.name], ratios.get(f"{v.name}_vs_assistant")
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
    return rows, results_settings


SPEED_COLUMNS = [
    ("threads", "threads"),
    ("batch", "batch"),
    ("langs", "languages"),
    ("variant", "variant"),
    ("sps", "sentences/s (median)", 1),
    ("spread", "spread % (p5-p95)", 0),
    ("ratio", "x assistant", 2),
    ("ratio_spread", "ratio p5-p95"),
]
SIZE_COLUMNS = [
    ("variant", "variant"),
    ("params_m", "params (M)", 1),
    ("params_vs_assistant", "x assistant params", 2),
    ("disk_mb", "weights MB", 0),
    ("peak_rss_mb", "peak RSS MB", 0),
    ("model_rss_mb", "RSS over baseline MB", 0),
    ("tokens", "tokens/sentence", 1),
    ("cos_to_fp32", "cos to fp32 (mean)", 4),
    ("cos_min", "cos (min)", 4),
]


def _agreement(variants: list[Variant], kept: dict) -> dict[str, dict]:
    """Each int8/ONNX variant's cosine to its own fp32 on the headline setting's sentences."""
    quality: dict[str, dict] = {}
    for v in variants:
        if "-" in v.name and v.name in kept and v.model_name in kept:
            quality[v.name] = cosine_agreement(kept[v.name], kept[v.model_name])
    return quality


def _size_rows(variants: list[Variant], quality: dict[str, dict]) -> list[dict]:
    a_params = next((v.params for v in variants if v.name == "assistant"), None)
    return [
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
        for v in variants
    ]


def _best_backends(variants: list[Variant], top: dict, quality: dict[str, dict]) -> dict[str, dict]:
    """Each model's best backend: the fastest variant at the headline setting whose mean cosine to its
    fp32 stays >= MIN_COSINE (refused variants never ran)."""
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
    return best


def _headline(plan: Plan, variants, settings: dict, top: dict, quality: dict, tokens: dict, refused) -> dict:
    threads, batch = plan.top

    def ratio_of(name: str, t: int) -> float | None:
        r = settings.get(f"t{t}_b{batch}", {}).get("ratios_vs_assistant", {}).get(f"{name}_vs_assistant")
        return r["median"] if r else None

    headline = {
        "student_vs_assistant_ratio": ratio_of("student", threads),
        "ratio_setting": {"batch": batch, "threads": threads},
        "ratios": {
            name: {str(t): ratio_of(name, t) for t in plan.threads}
            for name in [v.name for v in variants if v.name != "assistant"]
        },
        "expectation_student_ge_2x_assistant": None,
        "student_vs_assistant_ratio_focus_langs": (
            settings.get(f"t{threads}_b{batch}_focus", {})
            .get("ratios_vs_assistant", {})
            .get("student_vs_assistant", {})
            .get("median")
        ),
        "student_tokens_per_assistant_token": tokens.get("student_over_assistant"),
    }
    if headline["student_vs_assistant_ratio"] is not None:
        headline["expectation_student_ge_2x_assistant"] = headline["student_vs_assistant_ratio"] >= 2.0
    best = _best_backends(variants, top, quality)
    headline["best_backend"] = best
    headline["refused"] = refused
    if "student" in best:
        pick = best["student"]
        same = f"assistant{'' if pick['backend'] == 'torch' else '-' + pick['backend']}"
        headline["student_best_vs_assistant_fp32"] = ratio_of(pick["variant"], threads)
        headline["student_best_vs_assistant_same_backend"] = (
            round(paired_ratios(top[pick["variant"]], top[same]).median, 3) if same in top else None
        )
        headline["student_best_backend"] = pick["backend"]
    return headline


def _print_headline(headline: dict, plan: Plan) -> None:
    threads, batch = plan.top
    if "student_best_backend" in headline:
        backend = headline["student_best_backend"]
        print(
            f"headline: student on {backend} runs {headline['student_best_vs_assistant_fp32']}x the "
            f"assistant on torch fp32 and {headline['student_best_vs_assistant_same_backend']}x the assistant on "
            f"{backend} (batch {batch}, {threads} threads)",
            flush=True,
        )
    for model, pick in headline["best_backend"].items():
        print(
            f"best backend of {model}: {pick['backend']} ({pick['x_own_fp32']}x its fp32, cosine {pick['cos_to_fp32']})",
            flush=True,
        )


def _config(plan: Plan, variants: list[Variant], sents, probe: list[str]) -> dict:
    return {
        "specs": plan.specs,
        "variants": [v.name for v in variants],
        "sentences": len(sents.texts),
        "batch1_sentences": len(sents.texts[: plan.n_b1]),
        "languages": sents.lang_counts(),
        "source": sents.source,
        "prefix": PREFIX,
        "batch_sizes": plan.batch_sizes,
        "threads": plan.threads,
        "rounds": plan.rounds,
        "rss_probe": f"{len(probe)} longest sentences at batch 64, fresh process",
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.probe_rss:
        return probe_rss(args)
    plan = _plan(args)
    load = LoadMonitor()
    sents = mixed_sentences(plan.n_sent, seed=args.seed)
    texts = sents.texts
    log(f"{len(texts)} sentences in {len(sents.lang_counts())} languages; variants: {', '.join(plan.names)}")
    variants, refused = _load_variants(plan, texts)
    kept: dict = {}
    throughput = _throughput(plan, variants, texts, kept)
    focus = [x.strip() for x in args.focus_langs.split(",") if x.strip()]
    if (focus_setting := _focus_setting(plan, variants, focus, args.seed)) is not None:
        throughput["t{}_b{}_focus".format(*plan.top)] = focus_setting
    token_stats = token_counts(variants, sents, focus)
    probe = sorted(texts, key=len, reverse=True)[:192]  # the longest batches set the activation peak
    _measure_rss(args, plan, variants, probe)

    rows, settings = _speed_rows(throughput, variants)
    quality = _agreement(variants, kept)
    size_rows = _size_rows(variants, quality)
    speed_table, size_table = markdown_table(rows, SPEED_COLUMNS), markdown_table(size_rows, SIZE_COLUMNS)
    print(
        f"\n### Encode speed ({len(texts)} sentences at batch 64, {min(plan.n_b1, len(texts))} at batch 1; "
        f"{len(sents.lang_counts())} languages)\n\n{speed_table}\n",
        flush=True,
    )
    print(f"\n### Encoder size and memory\n\n{size_table}\n", flush=True)
    top = throughput.get("t{}_b{}".format(*plan.top), {}).get("per_round", {})
    headline = _headline(plan, variants, settings, top, quality, token_stats, refused)
    _print_headline(headline, plan)
    config = _config(plan, variants, sents, probe)
    results = {
        "settings": settings,
        "tokens": token_stats,
        "models": {r["variant"]: r for r in size_rows},
        "int8_onnx_agreement_with_fp32": quality,
    }
    tables = {"speed": speed_table, "size": size_table}
    return finish(
        "encode",
        args=args,
        config=config,
        results=results,
        headline=headline,
        load=load,
        tables=tables,
        notes=plan.notes,
    )


if __name__ == "__main__":
    raise SystemExit(run_main(main))
