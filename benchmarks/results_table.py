"""Results table of the (Fashion-)MNIST protocol runs from every ``benchmarks/results/**/metrics.json``.

Each finished `capture-pipeline mnist` run writes one small metrics.json; copying it under benchmarks/results/
(one folder per run) adds it to the table, so runs made in different sittings add up.

    python benchmarks/results_table.py [--results benchmarks/results] [--out table.md]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TARGETS = {("mnist", "gmdgm"): "paper: 0.94 (best of 10); targets best ≥ 0.94, mean ≥ 0.92",
           ("mnist", "m2"): "paper: 0.82 (best of 10)",
           ("fashion-mnist", "gmdgm"): "follow-up paper: 0.772 ± 0.013 (model UNSURE)"}


def load_runs(root: Path) -> list[dict]:
    runs = []
    for path in sorted(root.rglob("metrics.json")):
        m = json.loads(path.read_text())
        m["_path"] = str(path.relative_to(root))
        runs.append(m)
    return runs


def variant(r: dict) -> str:
    """"published" for the paper's loss and training; otherwise the additions used (posterior term, split moves)."""
    beta = r.get("train_config", {}).get("posterior_weight") or 0.0
    splits = r.get("split_epochs") or []
    if not beta and not splits:
        return "published"
    parts = [f"β={beta:g}"] if beta else []
    if splits:
        parts.append("splits after " + ",".join(map(str, splits)))
    return ", ".join(parts)


def _mean_sd_best(values) -> str:
    v = np.asarray(values, dtype=float)
    sd = f" ± {v.std(ddof=1):.3f}" if v.size > 1 else ""
    return f"{v.mean():.3f}{sd} (best {v.max():.3f})"


def table(runs: list[dict]) -> str:
    lines = ["| dataset | model | training | runs (seeds) | epochs run | many-to-one, test (val mapping) | Hungarian, test "
             "(val mapping) | many-to-one, transductive | wall time per run | reference |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    # Runs are summarised per (dataset, model, epochs run): short and long runs of a seed are not averaged together.
    groups = defaultdict(list)
    for r in runs:
        groups[(r["dataset"], r["model"], variant(r), r["epochs_run"])].append(r)
    for (dataset, model, var, _), rs in sorted(groups.items()):
        epochs = sorted({r["epochs_run"] for r in rs})
        minutes = np.mean([r["train_seconds"] for r in rs]) / 60
        lines.append(
            f"| {dataset} | {model} | {var} | {len(rs)} ({', '.join(str(r['seed']) for r in rs)}) | "
            f"{', '.join(map(str, epochs))} | {_mean_sd_best([r['test_many_to_one'] for r in rs])} | "
            f"{_mean_sd_best([r['test_hungarian'] for r in rs])} | "
            f"{_mean_sd_best([r['test_many_to_one_transductive'] for r in rs])} | {minutes:.0f} min | "
            f"{TARGETS.get((dataset, model), '')} |")
    lines += ["", "| run | training | seed | epochs (best) | s/epoch | device, threads | many-to-one | Hungarian | "
              "transductive | hidden classes | labelled classes | outputs used |", "|---" * 12 + "|"]
    for r in sorted(runs, key=lambda r: (r["dataset"], r["model"], r["seed"], r["_path"])):
        env = r.get("environment", {})
        lines.append(
            f"| {r['_path'].rsplit('/', 1)[0]} | {variant(r)} | {r['seed']} | {r['epochs_run']} ({r['best_epoch']}) | "
            f"{r['seconds_per_epoch']:.0f} | {env.get('device', '?')}, {env.get('threads', '?')} | "
            f"{r['test_many_to_one']:.4f} | {r['test_hungarian']:.4f} | {r['test_many_to_one_transductive']:.4f} | "
            f"{r['test_accuracy_hidden_classes']:.4f} | {r['test_accuracy_labelled_classes']:.4f} | "
            f"{r['outputs_used_test']} |")
    # GM-DGM vs M2 on each seed both were run with, for the same number of epochs
    by_seed = defaultdict(dict)
    for r in runs:
        if variant(r) == "published":
            by_seed[(r["dataset"], r["seed"], r["epochs_run"])][r["model"]] = r["test_many_to_one"]
    pairs = [(k, v) for k, v in sorted(by_seed.items()) if {"gmdgm", "m2"} <= v.keys()]
    if pairs:
        wins = sum(v["gmdgm"] > v["m2"] for _, v in pairs)
        lines += ["", f"GM-DGM above M2 (many-to-one, published training) on {wins} of {len(pairs)} seed(s) run "
                  "with both for the same number of epochs: " + ", ".join(f"{d} seed {s}, {e} epochs: {v['gmdgm']:.4f} vs {v['m2']:.4f}"
                                                   for (d, s, e), v in pairs)]
    # Learning curves: validation many-to-one accuracy after each epoch (from each run's history)
    longest = {}
    for r in runs:
        key = (r["dataset"], r["model"], variant(r), r["seed"])
        if key not in longest or r["epochs_run"] > longest[key]["epochs_run"]:
            longest[key] = r
    if longest:
        n = max(r["epochs_run"] for r in longest.values())
        # every epoch up to 10, then every 5th, and the last
        shown = sorted({e for e in range(1, n + 1) if e <= 10 or e % 5 == 0} | {n})
        lines += ["", "Validation many-to-one accuracy by epoch (longest run of each seed):", "",
                  "| run | " + " | ".join(str(e) for e in shown) + " |", "|---" * (len(shown) + 1) + "|"]
        for (d, m, v, s), r in sorted(longest.items()):
            acc = {h["epoch"]: h.get("val_many_to_one") for h in r.get("history", [])}
            cells = [f"{acc[e]:.3f}" if acc.get(e) is not None else "" for e in shown]
            lines.append(f"| {d} {m} ({v}) seed {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=HERE / "results")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    runs = load_runs(args.results)
    if not runs:
        print(f"no metrics.json under {args.results}")
        return
    text = table(runs)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
