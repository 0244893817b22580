"""The shared data sets by name: their files under the shared data folder (`distill.paths.shared_data_dir`),
the language lists that go with them, and the multilingual model every comparison is made against.

One home, so the evaluation suite, the app's Quality report, the backend checks and the benchmarks
read the same files and languages.
"""

from __future__ import annotations

# Files, relative to the shared data folder.
XQUAD_PARAGRAPHS = "corpus/xquad_paragraphs.jsonl"  # the demo corpus: XQuAD's paragraphs in 12 languages
XQUAD_QUESTIONS_DEV = "dev/xquad_questions_dev.jsonl"  # the dev questions on those paragraphs
FLORES_DEVTEST = "dev/flores200_devtest.jsonl"
NTREX = "parallel/ntrex128.jsonl"
UD_PUD = "parallel/ud_pud.jsonl"

# The distillation's default training languages (issue 3); dev numbers are reported for these.
DEFAULT_LANGS = ("de", "es", "fr", "it", "nl", "ar", "tr", "ru", "zh", "ja", "pl", "pt")
# The languages of XQuAD.
XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")

# A, the multilingual assistant (multilingual-e5-small): distilled into the student, and the app's
# "teacher" column.
ASSISTANT_SPEC = "pkg:multilingual-e5-small"
# T, the teacher of the distillation (all-MiniLM-L6-v2): defines the target space; the app's stand-in
# student until one is trained.
TEACHER_SPEC = "pkg:all-MiniLM-L6-v2"
