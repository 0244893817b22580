"""Example queries about paragraphs of the demo collection (XQuAD), each labelled with its language.

None of them is a title, a sentence of the corpus or a dev question: they are questions a user might
type. Their languages are the collection's; the search page marks an example whose language the open
collection does not hold. The German one's answer is only in Thai in the demo collection
(app/demo_corpus.py): a cross-lingual hit or none.
"""

from __future__ import annotations

EXAMPLES: list[tuple[str, str]] = [
    ("es", "¿Quién ganó el Super Bowl 50?"),
    ("de", "Wann nahm die Warschauer Börse nach dem Krieg den Handel wieder auf?"),
    ("zh", "特斯拉发明了什么？"),
    ("el", "Γιατί είναι σημαντικό το δάσος του Αμαζονίου για το κλίμα;"),
    ("en", "How does a steam engine turn heat into work?"),
    ("ar", "ما هو العدد الأولي؟"),
    ("ru", "Когда была основана Варшава?"),
    ("tr", "Kloroplastlarda fotosentez nerede gerçekleşir?"),
]
