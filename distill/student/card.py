"""The model card (README.md) written beside every exported student."""

from __future__ import annotations

from distill.config import RunConfig, dump_toml
from distill.evaluation import keys as K
from distill.student.modeling_xlsearch import XLSearchRecurrentModel, effective_parameters, stored_parameters


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4g}"
    return str(v)


def _scores_table(summary: dict, cfg: RunConfig) -> list[str]:
    rows: list[tuple[str, dict]] = []
    base = summary.get("baselines") or {}
    from distill.evaluation.headline import headline

    if base.get("teacher"):
        same = cfg.models.teacher == cfg.models.assistant
        rows.append(("T = A (teacher)" if same else "T (teacher)", headline(base["teacher"])))
    if base.get("assistant_raw"):
        rows.append(("A raw (before stage 1)", headline(base["assistant_raw"])))
    for name, info in (summary.get("stages") or {}).items():
        if info.get("dev_headline"):
            who = "A" if name == "stage1" else "S"
            rows.append((f"{who} after {name} ({info.get('title', '')})", info["dev_headline"]))
    if not rows:
        return ["No dev evaluation was run."]
    cols = sorted({k for _, h in rows for k in h}, key=lambda k: (not k.startswith("question"), k))
    out = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for label, h in rows:
        out.append(f"| {label} | " + " | ".join(_fmt(h.get(c)) for c in cols) + " |")
    return out


def model_card(
    cfg: RunConfig, student: XLSearchRecurrentModel, summary: dict, *, assistant_params: int | None
) -> str:
    stages = summary.get("stages") or {}
    vocab = stages.get("stage2") or {}  # stage 2 trims the vocabulary
    lines = _intro(cfg) + _architecture(cfg, student, vocab, assistant_params) + _training(cfg, stages, vocab)
    lines += _dev_scores(summary, cfg)
    lines += ["", "## Full config", "", "```toml", dump_toml(cfg).rstrip(), "```", ""]
    return "\n".join(lines)


def _stage1_note(cfg: RunConfig) -> str:
    """What stage 1 did to A (it is disabled when T = A, as in the offline presets)."""
    return "trained into T's space in stage 1" if cfg.stage1.enabled else "used as is: stage 1 was disabled"


def _intro(cfg: RunConfig) -> list[str]:
    return [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags: [xlsearch, multilingual, distillation, sentence-embeddings]",
        "---",
        "",
        f"# xlsearch student `{cfg.name}`",
        "",
        "A compact cross-lingual sentence encoder distilled with the four-stage framework of Ding et al. (2022),",
        f'"Multi-stage Distillation Framework for Cross-Lingual Semantic Similarity Matching": teacher T = `{cfg.models.teacher}`,',
        f"assistant A = `{cfg.models.assistant}` ({_stage1_note(cfg)}), student S = this model.",
        "",
        "## Use",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        "model = SentenceTransformer(path, trust_remote_code=True)",
        'emb = model.encode(["Hello world", "Hallo Welt"], prompt_name="query")',
        "",
        "from transformers import AutoModel, AutoTokenizer  # or plain transformers + mean pooling",
        "model = AutoModel.from_pretrained(path, trust_remote_code=True)",
        "tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)",
        "```",
        "",
        "The model uses A's prompts (`query: ` / `passage: `): sentences trained as queries, multi-sentence",
        "passages (if `data.passages`) with the passage prompt.",
        "Pooling: mean over all tokens, then L2 normalisation.",
        "",
    ]


def _architecture(
    cfg: RunConfig, student: XLSearchRecurrentModel, vocab: dict, assistant_params: int | None
) -> list[str]:
    c = student.config
    stored, effective = stored_parameters(student), effective_parameters(student)
    emb = sum(p.numel() for p in student.embeddings.parameters())
    ratio = f" ({stored / assistant_params:.1%} of A's {assistant_params:,})" if assistant_params else ""
    lines = [
        "## Architecture",
        "",
        f"- {'Bottleneck' if c.embedding_size < c.hidden_size else 'Full-width (no bottleneck)'} embedding: "
        f"Embedding({c.vocab_size}, {c.embedding_size}) -> Linear({c.embedding_size}, {c.hidden_size}, no bias),"
        f" plus position ({c.max_position_embeddings}) and token-type embeddings and LayerNorm (from A).",
        f"- {c.num_hidden_layers} BERT layers (hidden {c.hidden_size}, {c.num_attention_heads} heads, FFN {c.intermediate_size}),"
        f" initialised from A's layers {cfg.student.layer_ids()}, applied {c.num_passes} times"
        f" ({c.num_hidden_layers * c.num_passes} layer passes per token).",
        f"- Stored parameters: **{stored:,}**{ratio}; embeddings {emb:,}.",
        f"- Effective parameters (as if each pass had its own layers): {effective:,}.",
    ]
    if vocab.get("vocab_trimmed"):
        lines.append(
            f"- Vocabulary trimmed from {vocab.get('vocab_full'):,} to {vocab.get('vocab_size'):,} pieces "
            + (
                f"(the {cfg.vocab.max_pieces:,} most frequent in the training text, specials and single characters "
                "first); "
                if cfg.vocab.max_pieces
                else "(the pieces the training data uses, plus specials and single characters); "
            )
            + (
                "the saved tokenizer is A's own: dropped pieces read the row of the kept piece nearest by A's "
                "embedding cosine (`embeddings.token_rows`)."
                if vocab.get("vocab_untrimmed")
                else "the saved tokenizer emits the new ids."
            )
        )
    return lines


def _training(cfg: RunConfig, stages: dict, vocab: dict) -> list[str]:
    lines = ["", "## Training", ""]
    langs = (
        f"every language the files hold ({vocab.get('train_langs', '?')} languages)"
        if "*" in cfg.data.langs
        else ", ".join(cfg.data.langs)
    )
    lines.append(
        f"Pairs (en, xx) for {langs} from: "
        + ", ".join(f"`{f}`" for f in cfg.data.files)
        + (f", and STSb Multi MT train translations (`{cfg.data.stsb_dir}`)" if cfg.data.stsb_dir else "")
        + ". No dev/test file and no demo corpus was trained on."
    )
    layerwise = stages.get("stage3", {})
    if layerwise.get("variant") == "layerwise":
        lines.append(
            f"\nStage 3 is layerwise: S's first {layerwise.get('frozen_layers')} layers (A's own) stay frozen and "
            "the layers above learn A's token states at the layers they stand for, plus the teacher's scores "
            f"of cross-lingual pseudo-queries: {layerwise.get('windows'):,} windows of "
            f"{cfg.data.passage_sentences} sentences of `{cfg.data.passage_file}` in "
            f"{', '.join(layerwise.get('window_langs', []))}; a query is one sentence of a window in one language, "
            "the passages are windows of its document in others. Its pairs column counts windows."
        )
    lines += [
        "",
        "| stage | what | steps | pairs | train time (s) | loss first -> last |",
        "|---|---|---|---|---|---|",
    ]
    for name, info in stages.items():
        lines.append(
            f"| {name} | {info.get('title', '')} | {info.get('steps')} | {info.get('pairs')} | "
            f"{_fmt(info.get('train_seconds'))} | {_fmt(info.get('loss_first'))} -> {_fmt(info.get('loss_last'))} |"
        )
    return lines


def _dev_scores(summary: dict, cfg: RunConfig) -> list[str]:
    lines = [
        "",
        "## Dev scores",
        "",
        "`distill.evaluation`'s quick dev suite, the teacher beside the student. First the app's job: real XQuAD",
        "dev questions against paragraphs (`question_xling_r@1`: the answer first among another language's",
        "paragraphs; `question_ndcg@10` pooled over languages; `question_cos_random`: mean cosine of unrelated",
        "question-paragraph pairs, the collapse check). Then FLORES bitext against all 1,012 candidates and its",
        "short half, Multi30k, STSb Spearman (`sts_xling_spearman`: en-xx pairs). `sent_per_s` was timed",
        "during the run, on whatever else the machine was doing: compare it within this table only.",
        "",
    ]
    return lines + _scores_table(summary, cfg) + _curve_table(summary)


CURVE_COLUMNS = (K.QUESTION_XLING_R1, K.QUESTION_NDCG10, K.FLORES_SHORT_ACC, K.STS_XLING_SPEARMAN)


def _curve_table(summary: dict) -> list[str]:
    """The `eval.every` learning curve of stages 3-4, when the run recorded one."""
    curve = summary.get("curve") or []
    if not curve:
        return []
    lines = [
        "",
        "## Learning curve",
        "",
        "Dev headline while stages 3-4 trained (`eval.every`); pairs and seconds count from the start of",
        "stage 3, each pair embedded on both sides. A point inside a stage is scored before its learning",
        "rate has decayed.",
        "",
        "| stage | step | pairs seen | train time (s) | " + " | ".join(CURVE_COLUMNS) + " |",
        "|---|---|---|---|" + "---|" * len(CURVE_COLUMNS),
    ]
    for p in curve:
        cells = [str(p["stage"]), str(p["step"]), f"{p['pairs_seen']:,}", _fmt(p["train_seconds"])]
        lines.append("| " + " | ".join(cells + [_fmt(p.get(c)) for c in CURVE_COLUMNS]) + " |")
    return lines
