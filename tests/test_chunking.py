"""distill.chunking: one sentence rule for the chunker and the evaluation's first sentences."""

from __future__ import annotations

from distill.chunking import CHUNK_OVERLAP, CHUNK_TOKENS, first_sentence_of, sentence_spans


def test_first_sentence_follows_the_chunkers_sentence_rule():
    cases = {
        "Der Hund bellt. Die Katze schläft.": "Der Hund bellt.",
        'He said "Stop." Then he left.': 'He said "Stop."',  # the closing quote stays with its sentence
        "Wait... what happened?": "Wait...",
        "标题\n第二行。": "标题",  # a line break ends a sentence
        "東京は日本の首都です。大阪は都市です。": "東京は日本の首都です。",
        "यह पहला वाक्य है॥ यह दूसरा है।": "यह पहला वाक्य है॥",
        "  no sentence end at all  ": "no sentence end at all",
        "": "",
    }
    for text, first in cases.items():
        assert first_sentence_of(text) == first, text
        spans = sentence_spans(text)
        assert not spans or text[spans[0].start : spans[0].end] == first


def test_the_chunk_budget_is_defined_once():
    from distill.evaluation.questions import QuestionEvaluator
    from indexer.config import CollectionSettings

    defaults = CollectionSettings()
    assert (defaults.chunk_tokens, defaults.chunk_overlap) == (CHUNK_TOKENS, CHUNK_OVERLAP)
    kw = QuestionEvaluator.__init__.__kwdefaults__
    assert (kw["chunk_tokens"], kw["chunk_overlap"]) == (CHUNK_TOKENS, CHUNK_OVERLAP)
