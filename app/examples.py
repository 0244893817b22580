"""Example queries, one per language, about paragraphs that are in the demo collection (XQuAD).

None of them is a title or a sentence from the corpus: they are questions a user might type.
"""

from __future__ import annotations

EXAMPLES: list[tuple[str, str]] = [
    ("es", "¿Quién ganó el Super Bowl 50?"),
    ("de", "Wie hat sich der Schwarze Tod in Europa ausgebreitet?"),
    ("zh", "特斯拉发明了什么？"),
    ("fr", "Pourquoi la forêt amazonienne est-elle importante pour le climat ?"),
    ("en", "How does a steam engine turn heat into work?"),
    ("ar", "ما هو العدد الأولي؟"),
    ("ru", "Когда была основана Варшава?"),
    ("ja", "光合成は葉緑体のどこで行われますか？"),
]
