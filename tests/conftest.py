"""Shared fixtures: tiny randomly initialised transformers and tokenizers built in memory.

No network, no real weights: unit tests run in seconds. Tests marked `slow` use the packaged real
models instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.milvus import milvus_server, summary_line  # noqa: F401 - a session fixture for all tests

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(
    os.environ.get("XLSEARCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)

# A few sentences in several scripts, enough to train a byte-level BPE that covers any text.
TINY_CORPUS = [
    "The cat sits on the mat.",
    "Die Katze sitzt auf der Matte.",
    "El gato se sienta en la alfombra.",
    "Le chat est assis sur le tapis.",
    "猫坐在垫子上。",
    "القطة تجلس على السجادة.",
    "Кошка сидит на коврике.",
    "A man is playing a guitar.",
    "Ein Mann spielt Gitarre.",
    "Un hombre toca la guitarra.",
    "Who won the Super Bowl?",
    "¿Quién ganó el Super Bowl?",
    "Wer hat den Super Bowl gewonnen?",
]


def build_tiny_tokenizer(vocab_size: int = 300):
    """A byte-level BPE fast tokenizer with XLM-R style specials, trained on TINY_CORPUS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(TINY_CORPUS * 3, trainer=trainer)
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


def build_tiny_bert(tokenizer, *, hidden: int = 32, layers: int = 4, seed: int = 0):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden * 2,
        max_position_embeddings=64,
        type_vocab_size=2,
        pad_token_id=1,
    )
    return BertModel(config, add_pooling_layer=False).eval()


def save_tiny_model(
    path: Path, *, seed: int = 0, prompts: dict[str, str] | None = None, layers: int = 4
) -> Path:
    from distill.models import write_sentence_transformers_files

    tokenizer = build_tiny_tokenizer()
    model = build_tiny_bert(tokenizer, seed=seed, layers=layers)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    write_sentence_transformers_files(path, dim=model.config.hidden_size, prompts=prompts, max_seq_length=64)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random BERT saved as a sentence-transformers directory, with e5-style prompts."""
    return save_tiny_model(
        tmp_path_factory.mktemp("tiny") / "model", prompts={"query": "query: ", "passage": "passage: "}
    )


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory) -> Path:
    """A second tiny model (other seed, fewer layers): a stand-in student."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny_b") / "model", seed=1, layers=2)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def encoders(tiny_model_dir, tiny_model_dir_b):
    """The two tiny models as the indexer takes them: {spec: Encoder}, one thread each."""
    from distill.models import load_encoder

    return {
        str(tiny_model_dir): load_encoder(tiny_model_dir, threads=1),
        str(tiny_model_dir_b): load_encoder(tiny_model_dir_b, threads=1),
    }


@pytest.fixture(scope="module")
def docs(shared_data):
    """8 real paragraphs x en, de, es, zh (a module may define its own `docs`)."""
    from support.indexer import xquad_docs

    return xquad_docs(shared_data)


# Vector stores the indexer tests run against (indexer.stores): FAISS files, Milvus Lite (a local
# file; Linux/macOS only) and a real Milvus server (tests/support/milvus.py). Where a store cannot be
# installed or started, its runs skip with the reason.
STORE_KINDS = ["faiss", "milvus", pytest.param("milvus-server", marks=pytest.mark.milvus_server)]
MILVUS_SKIP = "milvus-lite/pymilvus not installed (Linux/macOS only): pip install 'xlsearch[milvus]'"


@pytest.fixture(params=STORE_KINDS)
def store_kind(request):
    """Each indexer test that takes this fixture runs once per vector store; pass
    `**support.milvus.store_args(store_kind)` to Collection.create."""
    if request.param == "milvus":
        pytest.importorskip("pymilvus", reason=MILVUS_SKIP)
        pytest.importorskip("milvus_lite", reason=MILVUS_SKIP)
    if request.param != "milvus-server":
        yield request.param
        return
    from support.milvus import use_server

    with pytest.MonkeyPatch.context() as mp:  # its own: a test's monkeypatch.undo() must not drop it
        use_server(mp, request.getfixturevalue("milvus_server"))
        yield request.param


def pytest_terminal_summary(terminalreporter) -> None:
    line = summary_line()  # so a CI log shows the server tests ran against a real server
    if line:
        terminalreporter.write_line(line)
