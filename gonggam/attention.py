"""Varlen attention for padding-free packs where no varlen kernel exists (the CPU; sdpa without flash-attn).

trl's padding-free packing concatenates a micro-batch into one row, and transformers hands sdpa a dense
block-diagonal mask for it, so attention costs (rows x length)^2 however short the dialogues are. This
implementation splits the row at trl's `cu_seq_lens_q` boundaries into a padded batch of dialogues and runs
causal sdpa on that: cost n_dialogues x longest^2, the same numbers as the unpacked dialogues. flash-attn's
varlen kernel does this on CUDA; torch 2.13 has nothing like it on the CPU, and flex_attention has no CPU
backward, hence this small function. Without cu_seq_lens (generation, unpacked batches) it is plain sdpa.

    attn_implementation: sdpa_varlen      # in a config; registered when gonggam.modeling is imported
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.functional import scaled_dot_product_attention
from torch.nn.utils.rnn import pad_sequence
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

NAME = "sdpa_varlen"


def split_padded(states: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """(1, heads, total, dim) -> (dialogues, heads, longest, dim), each dialogue left-aligned in its row."""
    pieces = [piece.transpose(0, 1) for piece in states[0].split(lengths, dim=1)]  # (length, heads, dim) each
    return pad_sequence(pieces, batch_first=True).transpose(1, 2)


def sdpa_varlen_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    boundaries = kwargs.get("cu_seq_lens_q")
    if boundaries is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    lengths = boundaries.diff().tolist()
    # Padding sits after each dialogue's last token, so a causal mask already keeps every real query off it.
    out = scaled_dot_product_attention(
        split_padded(query, lengths),
        split_padded(key, lengths),
        split_padded(value, lengths),
        is_causal=True,
        dropout_p=dropout,
        scale=scaling,
    ).transpose(1, 2)  # (dialogues, longest, heads, dim)
    return torch.cat([out[i, :length] for i, length in enumerate(lengths)])[None], None


def register() -> None:
    AttentionInterface.register(NAME, sdpa_varlen_forward)
    # The mask is still built (the fallback path needs it for padded batches); the varlen path ignores it.
    AttentionMaskInterface.register(NAME, sdpa_mask)
