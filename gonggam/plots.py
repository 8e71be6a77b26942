"""Charts people would rather see than read. matplotlib is imported lazily and drawn with the Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_loss(log_history: list[dict[str, Any]], path: Path) -> Path:
    """Train and eval loss against the optimizer step, from the Trainer's log history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(row["step"], row["loss"]) for row in log_history if "loss" in row]
    evals = [(row["step"], row["eval_loss"]) for row in log_history if "eval_loss" in row]
    fig, ax = plt.subplots(figsize=(6, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", color="tab:blue")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss (assistant tokens)", color="tab:orange")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
