"""HTML for a ranked hit, and Markdown-safe text for messages. Every piece of user text (documents,
collection names, paths, model specs, error messages) is escaped here, and only here.

Document text comes from users' files and may contain `<script>`, `<b>` or Markdown; it is shown
literally. The only markup in the output is the app's own (`<div>`, `<mark>`, `<span>`), and the
result is rendered with `st.html` (no Markdown pass, DOMPurify-sanitised) as a second safety net.
Messages (`st.error`, `st.markdown`, ...) are Markdown: user text goes in through `md_code` (shown
as code) or `md_text` (shown as plain text), so a backtick, `[link](url)` or `<tag>` stays literal.
"""

from __future__ import annotations

import re
import string
from html import escape

from app.calibration import NO_MATCH_BELOW

_MD_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")

LANGUAGE_NAMES = {
    "ar": "Arabic",
    "bg": "Bulgarian",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sv": "Swedish",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "zh": "Chinese",
}

CSS = """
<style>
.xl-hit {border: 1px solid rgba(128,128,128,.25); border-radius: .5rem; padding: .45rem .7rem; margin: 0 0 .5rem 0;}
.xl-head {display: flex; gap: .45rem; align-items: baseline; flex-wrap: wrap; font-size: .92rem;}
.xl-rank {color: #888; font-variant-numeric: tabular-nums;}
.xl-lang {font-family: monospace; font-size: .78rem; padding: 0 .3rem; border-radius: .25rem;
          background: #e8eefc; color: #1f3a8a;}
.xl-title {font-weight: 600;}
.xl-score {margin-left: auto; font-variant-numeric: tabular-nums; color: #555; font-size: .85rem;}
.xl-both {font-size: .72rem; color: #0a6b2d; background: #e3f6e9; border-radius: .25rem; padding: 0 .3rem;}
.xl-snippet {font-size: .86rem; line-height: 1.35; margin-top: .25rem; color: #333;}
.xl-snippet mark {background: #fff1a8; padding: 0 .1rem;}
.xl-id {font-size: .72rem; color: #999;}
.xl-foot details {font-size: .78rem; color: #555; margin-top: .15rem;}
.xl-foot summary {cursor: pointer; color: #888;}
.xl-full {font-size: .84rem; line-height: 1.35; white-space: pre-wrap; margin-top: .25rem;}
.xl-full mark {background: #fff1a8;}
.xl-strength {font-variant-numeric: tabular-nums; font-size: .78rem; border-radius: .25rem; padding: 0 .3rem;
              background: #e3f6e9; color: #0a6b2d;}
.xl-strength.weak {background: #f1f1f1; color: #777;}
.xl-faded .xl-hit {opacity: .45;}
</style>
"""


def md_text(text: object) -> str:
    """`text` as literal Markdown: every ASCII punctuation character backslash-escaped (CommonMark
    allows that for all of them), which also disarms Streamlit's `:color[...]`, `$math$` and HTML."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def md_code(text: object) -> str:
    """`text` as an inline code span. Its fence is longer than any backtick run inside, and line breaks
    become spaces (a blank line would end the span and the paragraph)."""
    text = " ".join(str(text).split())
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if len(fence) > 1 else f"{fence}{text}{fence}"


def language_label(code: str) -> str:
    name = LANGUAGE_NAMES.get(code)
    return f"{code} · {name}" if name else code


def _clip_end(text: str, n: int) -> str:
    """At most n characters, cut at a space where one is near."""
    if len(text) <= n:
        return text
    cut = text[:n]
    space = cut.rfind(" ")
    return (cut[:space] if space > 2 * n // 3 else cut) + " …"


def _clip_start(text: str, n: int) -> str:
    if len(text) <= n:
        return text
    cut = text[-n:]
    space = cut.find(" ")
    return "… " + (cut[space + 1 :] if 0 <= space < n // 3 else cut)


def highlight(text: str, start: int, end: int) -> str:
    """Escaped HTML of the whole `text`, with `text[start:end]` wrapped in `<mark>`."""
    start, end = sorted((max(0, min(start, len(text))), max(0, min(end, len(text)))))
    return f"{escape(text[:start])}<mark>{escape(text[start:end])}</mark>{escape(text[end:])}"


def snippet_html(
    text: str, start: int, end: int, *, max_chars: int = 320, context: int = 80, sentence: bool = False
) -> tuple[str, bool]:
    """(escaped HTML of a short snippet around the best span, whether it shows the whole text).

    The span is the best chunk, or with `sentence` the best-matching sentence: marked, with a little
    context on either side. A chunk that is the whole document is shown plainly (marking all of it
    says nothing); a sentence is marked even then.
    """
    start, end = sorted((max(0, min(start, len(text))), max(0, min(end, len(text)))))
    if start == 0 and end == len(text) and not sentence:
        clipped = _clip_end(text, max_chars)
        return escape(clipped), clipped == text
    chunk = _clip_end(text[start:end], max_chars)
    before = _clip_start(text[:start], context)
    after = _clip_end(text[end:], context) if chunk == text[start:end] else ""
    complete = before == text[:start] and after == text[end:] and chunk == text[start:end]
    return f"{escape(before)}<mark>{escape(chunk)}</mark>{escape(after)}", complete


def strength_html(strength: float | None, threshold: float) -> str:
    if strength is None:
        return ""
    weak = " weak" if strength < threshold else ""
    tip = (
        "match strength: how far this cosine stands above this query's level on unrelated paragraphs, in "
        f"units of the spread of this model's cosines of unrelated pairs; below {threshold:g} is no good match"
    )
    return f'<span class="xl-strength{weak}" title="{escape(tip)}">match {strength:.1f}</span>'


def title_html(title: str | None, lang: str) -> str:
    """The article title; XQuAD's titles are the English article's, so say so on other languages."""
    if not title:
        return '<span class="xl-id">(untitled)</span>'
    if lang != "en":
        tip = "the English article's title (the corpus has no title in the document's language)"
        return f'<span title="{escape(tip)}">{escape(title)}</span>'
    return escape(title)


def hit_html(
    rank: int,
    *,
    doc_id: str,
    lang: str,
    title: str | None,
    score: float,
    text: str,
    start: int,
    end: int,
    in_both: bool = False,
    strength: float | None = None,
    sentence: bool = False,
    threshold: float = NO_MATCH_BELOW,
) -> str:
    """One result card. Every argument that comes from a document is escaped."""
    both = '<span class="xl-both" title="also in the other column\'s top-k">in both</span>' if in_both else ""
    snippet, complete = snippet_html(text, start, end, sentence=sentence)
    full = (
        ""
        if complete
        else (
            f"<details><summary>full text ({len(text):,} characters)</summary>"
            f'<div class="xl-full" dir="auto">{highlight(text, start, end)}</div></details>'
        )
    )
    return (
        f'<div class="xl-hit" data-lang="{escape(lang)}" data-doc="{escape(str(doc_id))}">'
        f'<div class="xl-head"><span class="xl-rank">{rank}.</span>'
        f'<span class="xl-lang" title="{escape(language_label(lang))}">{escape(lang)}</span>'
        f'<span class="xl-title">{title_html(title, lang)}</span>{both}{strength_html(strength, threshold)}'
        f'<span class="xl-score" title="cosine similarity">{score:.3f}</span></div>'
        f'<div class="xl-snippet" dir="auto">{snippet}</div>'
        f'<div class="xl-foot"><span class="xl-id">{escape(str(doc_id))}</span>{full}</div>'
        "</div>"
    )
