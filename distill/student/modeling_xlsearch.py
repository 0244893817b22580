"""The xlsearch student: a bottleneck embedding plus k BERT layers applied r times.

This file is self-contained (torch + transformers only) because it is copied into every saved
student, so `AutoModel.from_pretrained(path, trust_remote_code=True)` works without xlsearch.

Architecture (Ding et al. 2022, stages 2 and 3):
  tokens -> Embedding(V, e) -> Linear(e, h, no bias) + position + token type -> LayerNorm -> dropout
         -> (L1 .. Lk) repeated r times -> last_hidden_state
Two optional linear maps, fitted in closed form (issue 27): `bridge_after` = i puts a Linear(h, h)
after layer i (where the student skips the assistant's layers), `output_map` one after the last layer
(on every token: mean pooling is linear, so it acts on the sentence vector as a Dense head would).
With `token_map_size` > 0 the tokenizer is the assistant's full one and a stored table first maps
each of its ids to one of the V rows (pieces outside the kept vocabulary share a kept row).
The layers use BERT's parameter names, so a BertModel's first k layers load into them directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutput


class XLSearchRecurrentConfig(PretrainedConfig):
    model_type = "xlsearch_recurrent"

    def __init__(
        self,
        vocab_size: int = 250037,
        embedding_size: int = 128,
        hidden_size: int = 384,
        num_hidden_layers: int = 3,
        num_passes: int = 2,
        num_attention_heads: int = 12,
        intermediate_size: int = 1536,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        pad_token_id: int = 1,
        position_offset: int = 0,
        token_map_size: int = 0,
        bridge_after: int = -1,
        output_map: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.bridge_after = bridge_after  # -1: no bridge
        self.output_map = output_map
        # Ids the tokenizer emits when they are mapped to rows (0: the tokenizer emits row ids).
        self.token_map_size = token_map_size
        # First position id: 0 for BERT-style assistants, pad_token_id + 1 for (XLM-)RoBERTa ones.
        self.position_offset = position_offset
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_passes = num_passes
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range


class BottleneckEmbeddings(nn.Module):
    """Word embeddings factorised as V x e then e x h; BERT's position/type embeddings and LayerNorm."""

    def __init__(self, config: XLSearchRecurrentConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.embedding_size, padding_idx=config.pad_token_id
        )
        self.word_projection = nn.Linear(config.embedding_size, config.hidden_size, bias=False)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.position_offset = getattr(config, "position_offset", 0)
        map_size = getattr(config, "token_map_size", 0)
        # int32: 1 MB for a 250k-piece tokenizer; saved with the weights
        self.register_buffer("token_rows", torch.zeros(map_size, dtype=torch.int32) if map_size else None)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        seq_len = input_ids.shape[1]
        offset = self.position_offset
        positions = torch.arange(offset, offset + seq_len, device=input_ids.device).unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        rows = input_ids if self.token_rows is None else self.token_rows[input_ids].long()
        x = self.word_projection(self.word_embeddings(rows))
        x = x + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class _SelfAttention(nn.Module):
    def __init__(self, config: XLSearchRecurrentConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout_p if self.training else 0.0
        )
        return out.transpose(1, 2).reshape(b, n, -1)


class _Output(nn.Module):
    """dense -> dropout -> residual add -> LayerNorm (BERT's SelfOutput / Output)."""

    def __init__(self, d_in: int, config: XLSearchRecurrentConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, config: XLSearchRecurrentConfig) -> None:
        super().__init__()
        self.self = _SelfAttention(config)
        self.output = _Output(config.hidden_size, config)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, bias), x)


class _Intermediate(nn.Module):
    def __init__(self, config: XLSearchRecurrentConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class XLSearchLayer(nn.Module):
    """A post-LayerNorm BERT layer with BertLayer's parameter names."""

    def __init__(self, config: XLSearchRecurrentConfig) -> None:
        super().__init__()
        self.attention = _Attention(config)
        self.intermediate = _Intermediate(config)
        self.output = _Output(config.intermediate_size, config)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, bias)
        return self.output(self.intermediate(x), x)


class XLSearchRecurrentPreTrainedModel(PreTrainedModel):
    config_class = XLSearchRecurrentConfig
    base_model_prefix = "xlsearch"
    supports_gradient_checkpointing = False

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class XLSearchRecurrentModel(XLSearchRecurrentPreTrainedModel):
    """Outputs `last_hidden_state` (batch, tokens, hidden), like `BertModel`."""

    def __init__(self, config: XLSearchRecurrentConfig) -> None:
        super().__init__(config)
        self.embeddings = BottleneckEmbeddings(config)
        self.layers = nn.ModuleList(XLSearchLayer(config) for _ in range(config.num_hidden_layers))
        h = config.hidden_size
        self.bridge = nn.Linear(h, h) if getattr(config, "bridge_after", -1) >= 0 else None
        self.output_map = nn.Linear(h, h) if getattr(config, "output_map", False) else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        num_passes: int | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)
        # Additive key mask (b, 1, 1, n): padded keys get a large negative score.
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for _ in range(self.config.num_passes if num_passes is None else num_passes):
            for i, layer in enumerate(self.layers):
                x = layer(x, bias)
                if self.bridge is not None and i == self.config.bridge_after:
                    x = self.bridge(x)
        if self.output_map is not None:
            x = self.output_map(x)
        return BaseModelOutput(last_hidden_state=x)


def stored_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def effective_parameters(model: XLSearchRecurrentModel) -> int:
    """Parameters as if every pass had its own layers (what the compute is proportional to)."""
    layers = sum(p.numel() for p in model.layers.parameters())
    return stored_parameters(model) + layers * (model.config.num_passes - 1)


__all__ = ["XLSearchRecurrentConfig", "XLSearchRecurrentModel"]
