"""Losses for fitting a twin to recorded responses.

In: ``rates [B, T, N]`` (the twin's non-negative output) and ``responses [B, T, N]``
(recorded, non-negative). Out: a scalar (or per-neuron values).

Poisson negative log-likelihood without the data-only term: ``rate - y * log(rate)``,
minimal at ``rate = y``. The first ``burn_in`` frames of every clip are not scored: the
recurrent core and the causal convolutions start from a blank past there (the released
code skips 10).
"""

from __future__ import annotations

import torch

from ..errors import InputError

__all__ = ["poisson_nll", "poisson_nll_floor"]


def _scored(rates: torch.Tensor, responses: torch.Tensor, burn_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    if rates.shape != responses.shape:
        raise InputError(f"rates {tuple(rates.shape)} and responses {tuple(responses.shape)} differ in shape")
    if rates.dim() != 3:
        raise InputError(f"rates and responses must be [batch, time, neuron], got {tuple(rates.shape)}")
    if not 0 <= burn_in < rates.shape[1]:
        raise InputError(f"burn_in {burn_in} leaves no frame of the {rates.shape[1]} to score")
    return rates[:, burn_in:].float(), responses[:, burn_in:].float()


def poisson_nll(rates: torch.Tensor, responses: torch.Tensor, burn_in: int = 0, eps: float = 1e-8,
                reduction: str = "mean") -> torch.Tensor:
    """``mean(rate - y log(rate + eps))`` over scored frames; ``reduction="neuron"`` -> ``[N]``."""
    r, y = _scored(rates, responses, burn_in)
    loss = r - y * torch.log(r + eps)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "neuron":
        return loss.mean(dim=(0, 1))
    raise InputError(f"reduction must be 'mean', 'sum' or 'neuron', got {reduction!r}")


def poisson_nll_floor(responses: torch.Tensor, burn_in: int = 0, eps: float = 1e-8) -> torch.Tensor:
    """The smallest mean :func:`poisson_nll` any prediction can reach on ``responses`` (rate = y)."""
    _, y = _scored(responses, responses, burn_in)
    return (y - y * torch.log(y + eps)).mean()
