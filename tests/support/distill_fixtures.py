"""Tiny models and data for the distillation tests: a random T, a random A with a Unigram
(SentencePiece-style) tokenizer so vocabulary trimming runs, and a few parallel sentences."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import TINY_CORPUS, build_tiny_bert, build_tiny_tokenizer

# (en, de, fr) triples; the tiny tokenizers are trained on these plus TINY_CORPUS.
PARALLEL = [
    ("The cat sits on the mat.", "Die Katze sitzt auf der Matte.", "Le chat est assis sur le tapis."),
    ("A man is playing a guitar.", "Ein Mann spielt Gitarre.", "Un homme joue de la guitare."),
    ("Who won the Super Bowl?", "Wer hat den Super Bowl gewonnen?", "Qui a gagné le Super Bowl ?"),
    ("The dog runs in the park.", "Der Hund läuft im Park.", "Le chien court dans le parc."),
    ("It is raining today.", "Heute regnet es.", "Il pleut aujourd'hui."),
    ("I like green tea.", "Ich mag grünen Tee.", "J'aime le thé vert."),
    ("The train is late again.", "Der Zug ist wieder spät.", "Le train est encore en retard."),
    ("She reads a book.", "Sie liest ein Buch.", "Elle lit un livre."),
    ("We are going home.", "Wir gehen nach Hause.", "Nous rentrons à la maison."),
    ("The sun is shining.", "Die Sonne scheint.", "Le soleil brille."),
    ("My brother plays football.", "Mein Bruder spielt Fußball.", "Mon frère joue au football."),
    ("The shop opens at nine.", "Der Laden öffnet um neun.", "Le magasin ouvre à neuf heures."),
]


def build_unigram_tokenizer(vocab_size: int = 400):
    """XLM-R-like: Unigram + Metaspace, specials <s> <pad> </s> <unk> first, <mask>."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], unk_token="<unk>"
    )
    corpus = (
        TINY_CORPUS + [t for row in PARALLEL for t in row] + ["query: " + t for row in PARALLEL for t in row]
    )
    tok.train_from_iterator(corpus * 3, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
        model_max_length=64,
    )


def save_model(path: Path, tokenizer, *, seed: int, layers: int, prompts: dict | None) -> Path:
    from distill.models import write_sentence_transformers_files

    model = build_tiny_bert(tokenizer, seed=seed, layers=layers)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    write_sentence_transformers_files(path, dim=model.config.hidden_size, prompts=prompts, max_seq_length=64)
    return path


def make_tiny_setup(root: Path) -> dict:
    """Teacher, assistant and training files under `root`; returns the config overrides for them."""
    teacher = save_model(root / "teacher", build_tiny_tokenizer(), seed=3, layers=2, prompts=None)
    assistant = save_model(
        root / "assistant",
        build_unigram_tokenizer(),
        seed=4,
        layers=4,
        prompts={"query": "query: ", "passage": "passage: "},
    )
    data = root / "data"
    data.mkdir(exist_ok=True)
    with (data / "tiny_parallel.jsonl").open("w") as f:
        for i, (en, de, fr) in enumerate(PARALLEL[:8]):
            for lang, text in (("eng_Latn", en), ("deu_Latn", de), ("fra_Latn", fr)):
                f.write(json.dumps({"id": f"s{i}", "lang": lang, "text": text}, ensure_ascii=False) + "\n")
    (data / "tiny.train.en-de.tsv").write_text(
        "en\tde\n" + "".join(f"{en}\t{de}\n" for en, de, _ in PARALLEL[8:])
    )
    return {
        "teacher": str(teacher),
        "assistant": str(assistant),
        "files": [str(data / "tiny_parallel.jsonl"), str(data / "tiny.train.en-de.tsv")],
    }


def tiny_overrides(setup: dict, out_dir: Path, cache_dir: Path, steps: int = 30, **extra) -> list[str]:
    files = json.dumps(setup["files"])
    o = [
        "--name=tiny",
        f"--out_dir={out_dir}",
        f"--cache_dir={cache_dir}",
        "--device=cpu",
        "--threads=1",
        f'--models.teacher="{setup["teacher"]}"',
        f'--models.assistant="{setup["assistant"]}"',
        f"--data.files={files}",
        '--data.langs=["de","fr"]',
        '--data.stsb_dir=""',
        "--data.max_seq_length=32",
        "--student.embedding_size=8",
        "--student.layers=2",
        "--student.passes=2",
        "--eval.enabled=false",
    ]
    for n in (1, 2, 3, 4):
        o += [
            f"--stage{n}.steps={steps}",
            f"--stage{n}.batch_size=8",
            f"--stage{n}.log_every=1",
            f"--stage{n}.checkpoint_every=10",
            f"--stage{n}.warmup_ratio=0.1",
        ]
    o += ["--stage1.lr=1e-3", "--stage2.lr=1e-2", "--stage3.lr=1e-3", "--stage4.lr=1e-3"]
    o += [f"--{k}={v}" for k, v in extra.items()]
    return o
