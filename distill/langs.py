"""Language codes: the shared data mixes ISO 639-1 (`de`), 639-3 (`deu`), NTREX (`zho-CN`) and
FLORES (`deu_Latn`) codes. Everything in xlsearch speaks ISO 639-1 where one exists."""

from __future__ import annotations

# ISO 639-3 (and a few macro-language variants) -> ISO 639-1, for the languages of the shared data.
ISO3_TO_ISO1 = {
    "afr": "af", "amh": "am", "ara": "ar", "arb": "ar", "aze": "az", "bak": "ba", "bel": "be", "ben": "bn",
    "bod": "bo", "bos": "bs", "bul": "bg", "cat": "ca", "ces": "cs", "ckb": "ku", "cym": "cy", "dan": "da",
    "deu": "de", "div": "dv", "dzo": "dz", "ell": "el", "eng": "en", "est": "et", "eus": "eu", "ewe": "ee",
    "fao": "fo", "fas": "fa", "pes": "fa", "fij": "fj", "fil": "tl", "tgl": "tl", "fin": "fi", "fra": "fr",
    "fuc": "ff", "gle": "ga", "glg": "gl", "guj": "gu", "hau": "ha", "heb": "he", "hin": "hi", "hmn": "hmn",
    "hrv": "hr", "hun": "hu", "hye": "hy", "ibo": "ig", "ind": "id", "isl": "is", "ita": "it", "jpn": "ja",
    "kan": "kn", "kat": "ka", "kaz": "kk", "khm": "km", "kin": "rw", "kir": "ky", "kor": "ko", "lao": "lo",
    "lav": "lv", "lit": "lt", "ltz": "lb", "mal": "ml", "mar": "mr", "mey": "mey", "mkd": "mk", "mlg": "mg",
    "mlt": "mt", "mon": "mn", "mri": "mi", "msa": "ms", "zsm": "ms", "mya": "my", "nde": "nd", "nep": "ne",
    "nld": "nl", "nno": "nn", "nob": "nb", "nor": "no", "nso": "nso", "nya": "ny", "orm": "om", "pan": "pa",
    "pol": "pl", "por": "pt", "prs": "fa", "pus": "ps", "ron": "ro", "rus": "ru", "shi": "shi", "sin": "si",
    "slk": "sk", "slv": "sl", "smo": "sm", "sna": "sn", "snd": "sd", "som": "so", "spa": "es", "sqi": "sq",
    "srp": "sr", "ssw": "ss", "swa": "sw", "swh": "sw", "swe": "sv", "tah": "ty", "tam": "ta", "tat": "tt",
    "tel": "te", "tgk": "tg", "tha": "th", "tir": "ti", "ton": "to", "tsn": "tn", "tuk": "tk", "tur": "tr",
    "uig": "ug", "ukr": "uk", "urd": "ur", "uzb": "uz", "ven": "ve", "vie": "vi", "wol": "wo", "xho": "xh",
    "yor": "yo", "yue": "yue", "zho": "zh", "zul": "zu", "gsw": "gsw", "kmr": "ku", "lug": "lg",
}
ISO1 = set(ISO3_TO_ISO1.values())


def canonical_lang(code: str) -> str:
    """Map `deu`, `deu_Latn`, `de-DE`, `DE` to `de`; unknown codes are returned lower-cased."""
    base = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return ISO3_TO_ISO1.get(base, base)


def is_known_lang(code: str) -> bool:
    """True for a code that `canonical_lang` maps to a language we know."""
    return canonical_lang(code) in ISO1
