"""What follows the transformer in a sentence encoder: pooling, Dense layers, normalisation.

Mirrors sentence-transformers' `Pooling` (every mode it has) and `Dense` modules, so a model
saved by sentence-transformers gives the same vectors here as there.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import torch


class Pooling(StrEnum):
    """sentence-transformers' pooling modes."""

    MEAN = "mean"
    CLS = "cls"
    MAX = "max"
    MEAN_SQRT_LEN_TOKENS = "mean_sqrt_len_tokens"
    WEIGHTEDMEAN = "weightedmean"
    LASTTOKEN = "lasttoken"


def mean_pool(token_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states over non-padding positions."""
    mask = attention_mask.unsqueeze(-1).to(token_states.dtype)
    return (token_states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def pool(states: torch.Tensor, attention_mask: torch.Tensor, mode: Pooling) -> torch.Tensor:
    """One vector per sequence from token states (batch, seq, dim), as sentence-transformers pools.

    Left padding (decoder models) is handled: `cls` takes the first real token, `lasttoken` the last,
    and `weightedmean` counts positions from the first real token.
    """
    if mode == Pooling.MEAN:
        return mean_pool(states, attention_mask)
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    if mode == Pooling.CLS:
        first = attention_mask.to(torch.int).argmax(dim=1)
        return states[torch.arange(states.shape[0], device=states.device), first]
    if mode == Pooling.MAX:
        return states.masked_fill(mask == 0, float("-inf")).max(dim=1).values
    if mode == Pooling.MEAN_SQRT_LEN_TOKENS:
        return (states * mask).sum(1) / torch.sqrt(mask.sum(1).clamp(min=1e-9))
    if mode == Pooling.WEIGHTEDMEAN:
        positions = torch.arange(1, states.shape[1] + 1, device=states.device, dtype=states.dtype).view(
            1, -1, 1
        )
        pad_lengths = attention_mask.to(torch.int32).argmax(dim=1).to(states.dtype)
        weights = mask * (positions - pad_lengths.view(-1, 1, 1))
        return (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    if mode == Pooling.LASTTOKEN:
        seq_len = states.shape[1]
        values, flipped = attention_mask.flip(1).max(1)
        flipped = torch.where(values == 0, seq_len - 1, flipped)
        last = seq_len - flipped - 1
        return (states * mask)[torch.arange(states.shape[0], device=states.device), last]
    raise ValueError(f"unknown pooling mode {mode!r}")


# Activations a Dense config may name; anything else is refused rather than imported.
_ACTIVATIONS = ("Identity", "Tanh", "ReLU", "GELU", "Sigmoid", "SiLU", "LeakyReLU", "ELU", "Softplus", "Mish")


class Dense(torch.nn.Module):
    """sentence-transformers' `Dense`: a linear layer plus activation on the sentence vector."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        activation: str = "Tanh",
        use_residual: bool = False,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"Dense activation {activation!r} is not supported; supported: {', '.join(_ACTIVATIONS)}"
            )
        self.in_features, self.out_features, self.use_residual = in_features, out_features, use_residual
        self.linear = torch.nn.Linear(in_features, out_features, bias=bias)
        self.activation = getattr(torch.nn, activation)()
        if use_residual and in_features != out_features:
            self.residual = torch.nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation(self.linear(x))
        if self.use_residual:
            out = out + (x if self.in_features == self.out_features else self.residual(x))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> Dense:
        """Read a sentence-transformers `Dense` directory (config.json plus safetensors or .bin weights)."""
        directory = Path(directory)
        cfg = json.loads((directory / "config.json").read_text())
        for key in ("module_input_name", "module_output_name"):
            if cfg.get(key, "sentence_embedding") != "sentence_embedding":
                raise ValueError(
                    f"{directory}: Dense on {cfg[key]!r} (not the sentence embedding) is not supported"
                )
        # sentence-transformers writes e.g. "torch.nn.modules.activation.Tanh"; None means identity.
        activation = (cfg.get("activation_function") or "torch.nn.Identity").rsplit(".", 1)[-1]
        layer = cls(
            int(cfg["in_features"]),
            int(cfg["out_features"]),
            bias=bool(cfg.get("bias", True)),
            activation=activation,
            use_residual=bool(cfg.get("use_residual", False)),
        )
        if (directory / "model.safetensors").exists():
            from safetensors.torch import load_file

            state = load_file(directory / "model.safetensors")
        elif (directory / "pytorch_model.bin").exists():
            state = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
        else:
            raise FileNotFoundError(f"{directory}: no Dense weights (model.safetensors or pytorch_model.bin)")
        layer.load_state_dict(state)
        return layer.eval()
