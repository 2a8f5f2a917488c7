"""Masked reductions over (B, T) tensors: the one home of masked_mean / masked_var / masked_whiten.

`mask` is 1 on response tokens that count and 0 on padding (and on tokens a filter removed);
it may be bool or float and must broadcast to the value tensor.
"""

from __future__ import annotations

import torch


def masked_sum(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of `values` where `mask` is set, over `dim` (all elements when None)."""
    masked = values * mask
    return masked.sum() if dim is None else masked.sum(dim)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of `values` (e.g. (B, T)) over the positions where `mask` is set.

    Over `dim` when given (a row with no valid position yields 0, not NaN), else over all elements.
    """
    mask = mask.to(values.dtype)
    count = mask.sum() if dim is None else mask.sum(dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of the masked elements of `values` (a scalar); Bessel-corrected when `unbiased`."""
    mask = mask.to(values.dtype)
    mean = masked_mean(values, mask)
    count = mask.sum()
    var = masked_sum((values - mean) ** 2, mask) / count.clamp(min=1)
    if unbiased:
        if count < 2:
            raise ValueError(f"unbiased variance needs at least 2 masked elements, got {int(count)}")
        var = var * count / (count - 1)
    return var


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(values - mean) / sqrt(var + eps) with mean and unbiased var over the masked elements.

    Shapes: values, mask (B, T) -> (B, T); positions outside the mask are set to 0.
    """
    mask = mask.to(values.dtype)
    mean = masked_mean(values, mask)
    var = masked_var(values, mask)
    return (values - mean) * torch.rsqrt(var + eps) * mask
