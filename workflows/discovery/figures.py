"""The report's figures, drawn with matplotlib (Agg) and returned as PNG bytes so the HTML can embed them."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def cluster_colours(n: int):
    """One distinct colour per output (tab20, repeated beyond 20)."""
    cmap = _plt().get_cmap("tab20")
    return [cmap(i % 20) for i in range(n)]


def composition_heatmap(shares: pd.DataFrame, title: str) -> bytes:
    """Heat map of a clusters x composition-keys table of shares (rows sum to at most 1)."""
    plt = _plt()
    h = max(2.5, 0.32 * shares.shape[0] + 1.5)
    w = max(5.0, 0.45 * shares.shape[1] + 2.5)
    fig, ax = plt.subplots(figsize=(w, h))
    im = ax.imshow(shares.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(shares.shape[1]))
    ax.set_xticklabels([str(c)[:38] for c in shares.columns], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(shares.shape[0]))
    ax.set_yticklabels(shares.index, fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="share of the cluster's windows")
    return _png(fig)


def confusion_figure(counts: pd.DataFrame, title: str) -> bytes:
    """True classes (rows) x model outputs (columns): colour = row share, text = window count."""
    plt = _plt()
    values = counts.to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.nan_to_num(values / values.sum(1, keepdims=True))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.42 * counts.shape[1] + 2.5), max(2.5, 0.4 * counts.shape[0] + 1.5)))
    im = ax.imshow(share, aspect="auto", cmap="Blues", vmin=0, vmax=1)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if values[i, j]:
                ax.text(j, i, f"{int(values[i, j])}", ha="center", va="center", fontsize=6,
                        color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(counts.shape[1]))
    ax.set_xticklabels(counts.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(counts.shape[0]))
    ax.set_yticklabels(counts.index, fontsize=8)
    ax.set_xlabel("model output (cluster)")
    ax.set_ylabel("true class (test windows)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="share of the class's windows")
    return _png(fig)


def latent_projection(points: np.ndarray, clusters: np.ndarray, names, title: str) -> bytes:
    """Scatter of 2-D projected latent means, one colour per cluster."""
    plt = _plt()
    colours = cluster_colours(len(names))
    fig, ax = plt.subplots(figsize=(6, 5))
    for k in np.unique(clusters):
        sel = clusters == k
        ax.scatter(points[sel, 0], points[sel, 1], s=5, alpha=0.6, color=colours[k], label=f"{names[k]} ({sel.sum()})")
    ax.set_xlabel("PC 1 of E[z|x]")
    ax.set_ylabel("PC 2 of E[z|x]")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=6, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _png(fig)


def participant_day(times, enmo_mg, clusters, names, true_labels, title: str) -> bytes:
    """One participant's windows over time: ENMO (top) and the cluster and true-class strips beneath it."""
    plt = _plt()
    colours = cluster_colours(len(names))
    t = pd.to_datetime(pd.Series(times)).to_numpy()
    fig, axes = plt.subplots(3, 1, figsize=(10, 4.2), sharex=True, gridspec_kw={"height_ratios": [3, 1, 1]})
    axes[0].plot(t, enmo_mg, lw=0.7, color="black")
    axes[0].set_ylabel("ENMO (mg)")
    axes[0].set_title(title, fontsize=10)
    width = np.timedelta64(30, "s")
    for ti, k in zip(t, clusters):
        axes[1].axvspan(ti, ti + width, color=colours[int(k)], lw=0)
    axes[1].set_yticks([])
    axes[1].set_ylabel("cluster", rotation=0, ha="right", va="center")
    labels = pd.Series(true_labels).fillna("(none)").astype(str).to_numpy()
    uniq = sorted(set(labels))
    cmap = _plt().get_cmap("Set2")
    lab_col = {u: ("#dddddd" if u == "(none)" else cmap(i % 8)) for i, u in enumerate(uniq)}
    for ti, u in zip(t, labels):
        axes[2].axvspan(ti, ti + width, color=lab_col[u], lw=0)
    axes[2].set_yticks([])
    axes[2].set_ylabel("true class", rotation=0, ha="right", va="center")
    used = [int(k) for k in pd.unique(np.asarray(clusters))]
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[k]) for k in used]
    axes[1].legend(handles, [names[k] for k in used], fontsize=6, ncol=min(8, len(used)), loc="upper center",
                   bbox_to_anchor=(0.5, -0.15), frameon=False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=lab_col[u]) for u in uniq]
    axes[2].legend(handles, uniq, fontsize=6, ncol=min(8, len(uniq)), loc="upper center",
                   bbox_to_anchor=(0.5, -0.35), frameon=False)
    fig.autofmt_xdate()
    return _png(fig)


def hour_profile(profile: pd.DataFrame, title: str) -> bytes:
    """Clusters (rows) x hour of day (columns): share of each cluster's windows in each hour."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.3 * profile.shape[0] + 1.2)))
    im = ax.imshow(profile.to_numpy(dtype=float), aspect="auto", cmap="magma")
    ax.set_xticks(range(0, 24, 2))
    ax.set_yticks(range(profile.shape[0]))
    ax.set_yticklabels(profile.index, fontsize=8)
    ax.set_xlabel("hour of day (device clock)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="share of the cluster's windows")
    return _png(fig)
