"""What the benchmarks run on: real sentences and queries from the shared data, the demo corpus,
and synthetic clustered embeddings. Everything is sampled with a fixed seed so reruns see the same
inputs.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import BenchmarkError, log, set_threads
from distill import datasets
from distill.data import DataError, read_corpus_jsonl, read_parallel_jsonl, read_sts_tsv
from distill.datasets import FLORES_DEVTEST, XQUAD_PARAGRAPHS
from distill.langs import canonical_lang
from distill.modelspec import weights_fingerprint
from distill.paths import shared_data_dir

FLORES = Path(FLORES_DEVTEST)
NTREX = Path(datasets.NTREX)
STSB_DIR = Path("sts") / "stsb_multi_mt"
DEMO_CORPUS = Path(XQUAD_PARAGRAPHS)

# The 11 languages of STSb multi-MT: short, query-like sentences.
QUERY_LANGS = ("de", "en", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh")


@dataclass(frozen=True)
class Sentences:
    texts: list[str]
    langs: list[str]
    source: str
    ids: list[str] = field(default_factory=list)

    def lang_counts(self) -> dict[str, int]:
        return dict(Counter(self.langs).most_common())


def _shared(rel: Path) -> Path:
    path = shared_data_dir() / rel
    if not path.is_file():
        raise BenchmarkError(f"shared data file not found: {path} (set XLSEARCH_SHARED_DATA)")
    return path


def mixed_sentences(n: int, *, seed: int = 0, langs: Sequence[str] | None = None) -> Sentences:
    """`n` real sentences in mixed languages: half FLORES-200 devtest (45 languages), half NTREX-128
    limited to the same languages, sampled without replacement with `seed`, then shuffled.
    `langs` (ISO 639-1) restricts both to those languages."""
    try:
        flores = read_parallel_jsonl(_shared(FLORES))
        if langs:
            wanted = {canonical_lang(x) for x in langs}
            flores = [r for r in flores if canonical_lang(r.lang) in wanted]
        flores_langs = {canonical_lang(r.lang) for r in flores}
        # NTREX has regional variants (eng-GB, fra-CA); keep one record per (id, language).
        ntrex, seen = [], set()
        for r in read_parallel_jsonl(_shared(NTREX)):
            lang = canonical_lang(r.lang)
            if lang in flores_langs and (r.id, lang) not in seen:
                seen.add((r.id, lang))
                ntrex.append(r)
    except DataError as exc:
        raise BenchmarkError(str(exc)) from None
    rng = random.Random(seed)
    half = n // 2
    if half <= min(len(flores), len(ntrex)):
        picked = rng.sample(flores, half) + rng.sample(ntrex, n - half)
    elif n <= len(flores) + len(ntrex):  # large n (index benchmark): sample the union
        picked = rng.sample(flores + ntrex, n)
    else:
        raise BenchmarkError(f"asked for {n:,} sentences; the shared data has {len(flores) + len(ntrex):,}")
    rng.shuffle(picked)
    return Sentences(
        texts=[r.text for r in picked],
        langs=[canonical_lang(r.lang) for r in picked],
        source=f"{FLORES} + {NTREX} (same 45 languages), seed {seed}",
        ids=[f"{r.id}.{r.lang}" for r in picked],
    )


def real_queries(n: int, *, seed: int = 0, langs: tuple[str, ...] = QUERY_LANGS) -> Sentences:
    """`n` short real sentences spread evenly over `langs` (STSb multi-MT dev, `sentence1`)."""
    rng = random.Random(seed)
    per_lang = -(-n // len(langs))
    texts, out_langs = [], []
    for lang in langs:
        try:
            rows = read_sts_tsv(_shared(STSB_DIR / f"stsb-{lang}-dev.tsv"))
        except DataError as exc:
            raise BenchmarkError(str(exc)) from None
        unique = sorted({r.sentence1 for r in rows})
        for text in rng.sample(unique, min(per_lang, len(unique))):
            texts.append(text)
            out_langs.append(lang)
    order = list(range(len(texts)))
    rng.shuffle(order)
    order = order[:n]
    return Sentences(
        texts=[texts[i] for i in order],
        langs=[out_langs[i] for i in order],
        source=f"{STSB_DIR}/stsb-<lang>-dev.tsv sentence1, {len(langs)} languages, seed {seed}",
    )


def demo_corpus(limit: int | None = None):
    """The demo collection's documents (XQuAD paragraphs, 12 languages); the first `limit` if given."""
    try:
        docs = read_corpus_jsonl(_shared(DEMO_CORPUS))
    except DataError as exc:
        raise BenchmarkError(str(exc)) from None
    return docs[:limit] if limit else docs


def clustered_vectors(
    n: int,
    dim: int = 384,
    *,
    n_clusters: int | None = None,
    seed: int = 0,
    alpha: float = 0.5,
    noise: float = 0.7,
    chunk: int = 100_000,
) -> np.ndarray:
    """`n` L2-normalised float32 vectors shaped like sentence embeddings, not like uniform noise.

    A Gaussian mixture in an anisotropic space: variance along a random orthonormal basis decays as
    i**-alpha, cluster centres are drawn from that distribution, each point is its centre plus
    `noise` times a draw from the same distribution, and cluster sizes follow a Zipf-like law (a
    few big topics, many small ones). Calibration (alpha 0.5, noise 0.7): the participation ratio
    of the covariance spectrum is ~90 and random pairs have cosine 0.01 +- 0.11; all-MiniLM-L6-v2
    on 1,500 NTREX sentences measured PR 105 and 0.06 +- 0.10 (multilingual-e5-small: PR 105,
    but every pair near 0.76). Uniform random vectors would make every point nearly equidistant
    and ANN recall meaningless; isotropic clusters would be harder than real text.
    """
    import torch

    # Linear algebra through torch (its thread count is set by the caller): numpy's OpenBLAS threads
    # spin against other processes on a shared 2-core machine, turning a 10 ms QR into seconds.
    rng = np.random.default_rng(seed)
    k = n_clusters or max(16, n // 1000)
    basis = torch.linalg.qr(torch.from_numpy(rng.standard_normal((dim, dim))))[0].numpy()
    scales = np.arange(1, dim + 1, dtype=np.float64) ** (-alpha / 2)
    scales /= np.sqrt((scales**2).sum())  # total variance 1
    mix = torch.from_numpy(
        (basis * scales).T.astype(np.float32)
    )  # z @ mix: covariance basis diag(s^2) basis^T
    centres = (torch.from_numpy(rng.standard_normal((k, dim), dtype=np.float32)) @ mix).numpy()
    weights = 1.0 / np.arange(1, k + 1) ** 0.5
    assign = rng.choice(k, size=n, p=weights / weights.sum())
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = (torch.from_numpy(rng.standard_normal((stop - start, dim), dtype=np.float32)) @ mix).numpy()
        block *= np.float32(noise)
        block += centres[assign[start:stop]]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


# Paragraphs are cut at this many tokens for the search benchmark's demo vectors (see demo_vectors).
DEMO_MAX_TOKENS = 128


def demo_vectors(
    spec: str, docs: int, queries: int, seed: int, cache_dir: Path
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Demo-corpus passage vectors and real query vectors from model `spec` (cached on disk)."""
    from distill.models import ModelNotFoundError, Role, load_encoder, resolve_model

    corpus = demo_corpus(docs)
    qs = real_queries(queries, seed=seed)
    try:
        path = resolve_model(spec)
    except ModelNotFoundError as exc:
        raise BenchmarkError(str(exc)) from None
    stamp = json.dumps(weights_fingerprint(path), sort_keys=True)
    key = hashlib.sha1(
        f"{spec}|{path}|{stamp}|{len(corpus)}|{qs.texts}|{DEMO_MAX_TOKENS}".encode()
    ).hexdigest()[:16]
    cache = cache_dir / f"demo-{key}.npz"
    info = {
        "model": spec,
        "docs": len(corpus),
        "queries": len(qs.texts),
        "query_source": qs.source,
        "cache": str(cache),
        "max_tokens_per_paragraph": DEMO_MAX_TOKENS,
    }
    if cache.is_file():
        data = np.load(cache)
        log(f"  demo vectors from cache {cache}")
        return data["docs"], data["queries"], {**info, "cached": True}
    set_threads(2)
    # Paragraphs are cut at DEMO_MAX_TOKENS: vectors of the right geometry are what the search
    # benchmark needs, and full 512-token paragraphs cost the student minutes on 2 cores.
    encoder = load_encoder(spec, max_seq_length=DEMO_MAX_TOKENS)
    t0 = time.perf_counter()
    xb = encoder.encode([d.text for d in corpus], batch_size=32, prefix=Role.PASSAGE, show_progress=True)
    xq = encoder.encode(qs.texts, batch_size=32, prefix=Role.QUERY)
    log(
        f"  encoded {len(corpus)} demo documents + {len(qs.texts)} queries with {spec} in {time.perf_counter() - t0:.0f} s"
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.stem + ".tmp.npz")
    np.savez(tmp, docs=xb, queries=xq)
    tmp.replace(cache)
    return xb, xq, {**info, "cached": False}
