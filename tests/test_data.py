"""Readers: good files, the real shared files, and every bad case naming file and line."""

from __future__ import annotations

import json

import pytest

from distill.data import (
    DataError,
    build_training_pairs,
    read_corpus_jsonl,
    read_pair_tsv,
    read_parallel_jsonl,
    read_qrels_tsv,
    read_retrieval_set,
    read_sts_tsv,
)
from distill.langs import canonical_lang


def write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(*objs) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


def test_canonical_lang():
    assert [
        canonical_lang(c) for c in ("deu", "deu_Latn", "de-DE", "DE", "zho-CN", "spa-MX", "arb_Arab")
    ] == ["de", "de", "de", "de", "zh", "es", "ar"]


def test_parallel_jsonl_and_pairs(tmp_path):
    f = write(
        tmp_path / "p.jsonl",
        jsonl(
            {"id": "1", "lang": "eng", "text": "Hello"},
            {"id": "1", "lang": "deu", "text": "Hallo"},
            {"id": "1", "lang": "spa-MX", "text": "Hola"},
            {"id": "1", "lang": "jpn", "text": "こんにちは"},
            {"id": "2", "lang": "deu", "text": "ohne Englisch"},
        ),
    )
    assert len(read_parallel_jsonl(f)) == 5
    pairs = build_training_pairs([f], ["de", "es"])
    assert [(p.en, p.xx, p.lang) for p in pairs] == [("Hello", "Hallo", "de"), ("Hello", "Hola", "es")]
    every = build_training_pairs([f], ["*"])  # "*": every language the file holds
    assert [p.lang for p in every] == ["de", "es", "ja"]


def test_pair_tsv_keeps_quotes_and_orients_pairs(tmp_path):
    f = write(tmp_path / "x.tsv", 'de\ten\n"Sie sagte "ja""\tShe said "yes"\n')
    ps = read_pair_tsv(f)
    assert (ps.src_lang, ps.tgt_lang, ps.src, ps.tgt) == (
        "de",
        "en",
        ['"Sie sagte "ja""'],
        ['She said "yes"'],
    )
    assert [(p.en, p.xx, p.lang) for p in build_training_pairs([f], ["de"])] == [
        ('She said "yes"', '"Sie sagte "ja""', "de")
    ]
    assert len(build_training_pairs([f], ["*"])) == 1 and build_training_pairs([f], ["fr"]) == []


def test_sts_and_retrieval(tmp_path):
    sts = write(tmp_path / "s.tsv", "sentence1\tsentence2\tscore\tlang1\tlang2\na\tb\t4.5\ten\tde\n")
    assert read_sts_tsv(sts)[0].score == 4.5
    q = write(tmp_path / "q.jsonl", jsonl({"id": "q1", "lang": "es", "text": "¿Quién?"}))
    c = write(
        tmp_path / "c.jsonl",
        jsonl(
            {"id": "d1", "lang": "de", "text": "Wer", "title": "T", "parallel_id": "p"},
            {"id": "d2", "lang": "zh", "text": "谁"},
        ),
    )
    r = write(tmp_path / "r.tsv", "query_id\tdoc_id\trelevance\nq1\td1\t1\nq1\td2\t0\n")
    rs = read_retrieval_set(q, c, r)
    assert (
        rs.qrels == {"q1": {"d1": 1}}
        and rs.corpus[0].metadata == {"parallel_id": "p"}
        and rs.corpus[1].title == ""
    )


@pytest.mark.parametrize(
    ("name", "content", "reader", "match"),
    [
        (
            "bad.jsonl",
            '{"id": "1", "lang": "en", "text": "ok"}\n{not json}\n',
            read_parallel_jsonl,
            r"bad.jsonl:2: invalid JSON",
        ),
        (
            "miss.jsonl",
            '{"id": "1", "text": "ok"}\n',
            read_parallel_jsonl,
            r"miss.jsonl:1: missing field 'lang'",
        ),
        ("arr.jsonl", "[1, 2]\n", read_corpus_jsonl, r"arr.jsonl:1: expected a JSON object"),
        ("empty.jsonl", "", read_corpus_jsonl, r"empty.jsonl: file is empty"),
        (
            "blank.jsonl",
            '{"id": "1", "lang": "en", "text": "  "}\n',
            read_corpus_jsonl,
            r"blank.jsonl:1: field 'text' is empty",
        ),
        (
            "dup.jsonl",
            jsonl({"id": "1", "lang": "en", "text": "a"}, {"id": "1", "lang": "de", "text": "b"}),
            read_corpus_jsonl,
            r"dup.jsonl:2: duplicate document id",
        ),
        (
            "utf.jsonl",
            b'{"id": "1", "lang": "en", "text": "\xff"}\n',
            read_corpus_jsonl,
            r"utf.jsonl:1: invalid UTF-8",
        ),
        ("cols.tsv", "en\tde\na\tb\tc\n", read_pair_tsv, r"cols.tsv:2: expected 2 tab-separated columns"),
        ("hdr.tsv", "en\n", read_pair_tsv, r"hdr.tsv:1: header must name two languages"),
        (
            "noscore.tsv",
            "sentence1\tsentence2\na\tb\n",
            read_sts_tsv,
            r"noscore.tsv:1: header lacks column\(s\) \['score'\]",
        ),
        (
            "nan.tsv",
            "sentence1\tsentence2\tscore\na\tb\thigh\n",
            read_sts_tsv,
            r"nan.tsv:2: score 'high' is not a number",
        ),
        (
            "onlyhead.tsv",
            "sentence1\tsentence2\tscore\n",
            read_sts_tsv,
            r"onlyhead.tsv: no rows after the header",
        ),
        ("qrels.tsv", "query_id\tdoc\n", read_qrels_tsv, r"qrels.tsv:1: header lacks column"),
    ],
)
def test_malformed_inputs_name_file_and_line(tmp_path, name, content, reader, match):
    with pytest.raises(DataError, match=match):
        reader(write(tmp_path / name, content))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_corpus_jsonl(tmp_path / "nope.jsonl")


def test_qrels_naming_unknown_ids(tmp_path):
    q = write(tmp_path / "q.jsonl", jsonl({"id": "q1", "lang": "es", "text": "x"}))
    c = write(tmp_path / "c.jsonl", jsonl({"id": "d1", "lang": "de", "text": "y"}))
    with pytest.raises(DataError, match=r"query id\(s\) not in"):
        read_retrieval_set(q, c, write(tmp_path / "r1.tsv", "query_id\tdoc_id\trelevance\nq9\td1\t1\n"))
    with pytest.raises(DataError, match=r"document id\(s\) not in"):
        read_retrieval_set(q, c, write(tmp_path / "r2.tsv", "query_id\tdoc_id\trelevance\nq1\td9\t1\n"))


def test_shared_data_reads(shared_data):
    langs = ["de", "es", "fr", "it", "nl", "ar", "tr", "ru", "zh", "ja", "pl", "pt"]
    pairs = build_training_pairs([shared_data / "parallel" / "ud_pud.jsonl"], langs)
    assert {p.lang for p in pairs} == set(langs) - {"nl"}  # UD-PUD has no Dutch
    assert len(read_sts_tsv(shared_data / "sts" / "stsb_multi_mt" / "stsb-de-dev.tsv")) == 1361
    assert len(read_pair_tsv(shared_data / "parallel" / "multi30k" / "multi30k.val.en-fr.tsv").src) == 1013
    docs = read_corpus_jsonl(shared_data / "corpus" / "xquad_paragraphs.jsonl")
    assert len(docs) == 2880 and docs[0].metadata["parallel_id"]
