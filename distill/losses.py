"""The distillation losses, one small module each (notation of Ding et al. 2022).

All take sentence embeddings (batch, dim) and return `(total, parts)` where `parts` names each
weighted term, so the training log shows what moves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distill.config import ContrastiveVariant


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all elements (as `nn.MSELoss`)."""
    return F.mse_loss(a, b)


def cos_matrix(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """B x B cosine similarities of the rows of x and y."""
    return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T


class PairMSELoss(nn.Module):
    """MSE(S(en), target_en) + MSE(S(xx), target_xx).

    Stage 1: S = A, both targets T(en) (the English teacher's vector for both sides).
    Stage 2: pooled embedding-layer outputs of S and A (targets E_A(en), E_A(xx)).
    Stage 3: targets A(en), A(xx).
    """

    def __init__(self, weight_en: float = 1.0, weight_xx: float = 1.0) -> None:
        super().__init__()
        self.weight_en, self.weight_xx = weight_en, weight_xx

    def forward(
        self, s_en: torch.Tensor, s_xx: torch.Tensor, target_en: torch.Tensor, target_xx: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        en = self.weight_en * mse(s_en, target_en)
        xx = self.weight_xx * mse(s_xx, target_xx)
        return en + xx, {"mse_en": en.item(), "mse_xx": xx.item()}


class CosMatchTerm(nn.Module):
    """mcl: S's en-xx cosines match T's en-en cosines, MSE over the B x B matrix."""

    part, options = "cos", ("weight_cos",)

    def __init__(self, *, weight_cos: float = 1.0) -> None:
        super().__init__()
        self.weight = weight_cos

    def forward(self, s_en, s_xx, t_en, t_xx=None) -> torch.Tensor:
        return self.weight * mse(cos_matrix(s_en, s_xx), cos_matrix(t_en, t_en))


class IdentityCosTerm(CosMatchTerm):
    """bool: S's en-xx cosines match the identity (each pair 1, every other pair 0)."""

    def forward(self, s_en, s_xx, t_en, t_xx=None) -> torch.Tensor:
        eye = torch.eye(s_en.shape[0], device=s_en.device, dtype=s_en.dtype)
        return self.weight * mse(cos_matrix(s_en, s_xx), eye)


class InfoNCETerm(nn.Module):
    """infonce: cross-entropy of each en against the batch's xx (in-batch negatives)."""

    part, options = "infonce", ("infonce_weight", "infonce_scale")

    def __init__(self, *, infonce_weight: float = 0.01, infonce_scale: float = 20.0) -> None:
        super().__init__()
        self.weight, self.scale = infonce_weight, infonce_scale

    def forward(self, s_en, s_xx, t_en, t_xx=None) -> torch.Tensor:
        labels = torch.arange(s_en.shape[0], device=s_en.device)
        return self.weight * F.cross_entropy(self.scale * cos_matrix(s_en, s_xx), labels)


class ScoreKLTerm(nn.Module):
    """kl: the retrieval form of mcl, T's in-batch score distribution (rows and columns) as target.
    Needs T's view of xx, so T must be multilingual (T = A)."""

    part, options, needs_t_xx = "kl", ("kl_weight", "kl_temperature"), True

    def __init__(self, *, kl_weight: float = 1.0, kl_temperature: float = 0.02) -> None:
        super().__init__()
        self.weight, self.temperature = kl_weight, kl_temperature

    def forward(self, s_en, s_xx, t_en, t_xx=None) -> torch.Tensor:
        if t_xx is None:
            raise ValueError("the kl variant needs the teacher's embeddings of the xx side (t_xx)")
        return self.weight * score_distillation(s_xx, s_en, t_xx, t_en, self.temperature)


# Stage 4's variants by name: the MSE terms plus at most one of these. A new variant is an entry
# here, its value in `ContrastiveVariant` and its options as `[stage4]` fields.
CONTRASTIVE_TERMS: dict[ContrastiveVariant, type[nn.Module] | None] = {
    ContrastiveVariant.MCL: CosMatchTerm,
    ContrastiveVariant.BOOL: IdentityCosTerm,
    ContrastiveVariant.INFONCE: InfoNCETerm,
    ContrastiveVariant.KL: ScoreKLTerm,
    ContrastiveVariant.MSE: None,
}
CONTRASTIVE_OPTIONS = tuple(dict.fromkeys(o for t in CONTRASTIVE_TERMS.values() if t for o in t.options))


class ContrastiveLoss(nn.Module):
    """Stage 4, multilingual contrastive learning against T. `t_en` is T(en); T never sees xx.

    w_en MSE(S_en, T_en) + w_xx MSE(S_xx, T_en), plus the variant's term (`CONTRASTIVE_TERMS`):
    mcl: w_cos MSE(cos(S_en, S_xx), cos(T_en, T_en)); bool: w_cos MSE(cos(S_en, S_xx), I);
    infonce: w_nce CE(scale * cos(S_en, S_xx), diagonal); kl: w_kl KL(softmax(T_xx T_en^T / t) ||
    softmax(S_xx S_en^T / t)) over rows and columns; mse: nothing more.
    """

    def __init__(
        self,
        variant: ContrastiveVariant | str = ContrastiveVariant.MCL,
        *,
        weight_en: float = 1.0,
        weight_xx: float = 1.0,
        **options: float,
    ) -> None:
        super().__init__()
        unknown = set(options) - set(CONTRASTIVE_OPTIONS)
        if unknown:
            raise TypeError(f"unknown stage-4 loss options: {', '.join(sorted(unknown))}")
        self.variant = ContrastiveVariant(variant)
        self.weight_en, self.weight_xx = weight_en, weight_xx
        term = CONTRASTIVE_TERMS[self.variant]
        self.term = None if term is None else term(**{k: options[k] for k in term.options if k in options})
        self.needs_t_xx = getattr(self.term, "needs_t_xx", False)

    @classmethod
    def from_config(cls, st) -> ContrastiveLoss:
        """From a `[stage4]` config section."""
        return cls(
            st.variant,
            weight_en=st.weight_en,
            weight_xx=st.weight_xx,
            **{k: getattr(st, k) for k in CONTRASTIVE_OPTIONS},
        )

    def forward(
        self, s_en: torch.Tensor, s_xx: torch.Tensor, t_en: torch.Tensor, t_xx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        en = self.weight_en * mse(s_en, t_en)
        xx = self.weight_xx * mse(s_xx, t_en)
        total = en + xx
        parts = {"mse_en": en.item(), "mse_xx": xx.item()}
        if self.term is not None:
            term = self.term(s_en, s_xx, t_en, t_xx)
            parts[self.term.part] = term.item()
            total = total + term
        return total, parts


def score_distillation(
    s_q: torch.Tensor, s_p: torch.Tensor, t_q: torch.Tensor, t_p: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean of KL(teacher || student) over the rows (each q against all p) and the columns (each p against all q)."""
    s = cos_matrix(s_q, s_p) / temperature
    with torch.no_grad():
        t = cos_matrix(t_q, t_p) / temperature
    rows = F.kl_div(F.log_softmax(s, dim=1), F.log_softmax(t, dim=1), log_target=True, reduction="batchmean")
    cols = F.kl_div(
        F.log_softmax(s, dim=0).T, F.log_softmax(t, dim=0).T, log_target=True, reduction="batchmean"
    )
    return (rows + cols) / 2


class TokenMSELoss(nn.Module):
    """Token-level (TinyBERT/MiniLM-style) distillation: MSE between S's and A's hidden states,
    averaged over the real tokens of the batch (padding masked out)."""

    def forward(self, states: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(states.dtype)
        return (((states - targets) ** 2) * m).sum() / (m.sum() * states.shape[-1]).clamp(min=1)


class ScoreKLLoss(nn.Module):
    """KL(softmax(T_q T_p^T / t) || softmax(S_q S_p^T / t)) over each query's row of in-batch passages:
    the teacher's ranking of every passage in the batch (hard negatives included) is the target."""

    def __init__(self, temperature: float = 0.02) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(
        self, s_q: torch.Tensor, s_p: torch.Tensor, t_q: torch.Tensor, t_p: torch.Tensor
    ) -> torch.Tensor:
        s = cos_matrix(s_q, s_p) / self.temperature
        with torch.no_grad():
            t = cos_matrix(t_q, t_p) / self.temperature
        return F.kl_div(
            F.log_softmax(s, dim=1), F.log_softmax(t, dim=1), log_target=True, reduction="batchmean"
        )
