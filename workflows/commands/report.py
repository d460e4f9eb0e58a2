"""`capture-pipeline report`: cluster composition, metrics and a self-contained HTML report of a training run."""

from __future__ import annotations

import argparse

NAME = "report"
HELP = ("Report a training run: per-cluster CPA composition, Calinski-Harabasz, test accuracy and confusion "
        "matrix (GM-DGM and M2 side by side); writes cluster_composition.csv, clusters.csv, metrics.json, "
        "report.html.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the report command."""
    p.add_argument("run", metavar="RUN", help="run folder written by 'capture-pipeline train'")
    p.add_argument("--out", required=True, metavar="REPORT", help="folder for the report files (created)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def run(args) -> int:
    """Write the report and print where it is."""
    import torch

    from workflows.discovery.report import write_report

    torch.set_num_threads(max(1, args.threads))
    path = write_report(args.run, args.out, progress=lambda m: print(m, flush=True))
    print(f"open {path.resolve()}")
    return 0
