"""`capture-pipeline demo`: the whole activity-discovery pipeline on a small simulated cohort (what `make demo` runs)."""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = ("Simulate a small cohort, extract features, split participants, train GM-DGM and M2 briefly (Running and "
        "Bicycling hidden) and write the report; about 5-8 minutes on 2 cores. Prints where the report is.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the demo command."""
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--participants", type=int, default=12, help="simulated participants (default 12)")
    p.add_argument("--hours", type=float, default=10.0, help="hours per recording, from 15:00 (default 10)")
    p.add_argument("--seed", type=int, default=3,
                   help="cohort seed (default 3: a cohort with runners and cyclists); the split seed is then the "
                   "first one whose test participants run and cycle")
    p.add_argument("--epochs", type=int, default=20, help="training epochs per model (default 20)")
    p.add_argument("--max-minutes", type=float, default=3.0, help="training time cap per model (default 3)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a busy machine more threads were 4x slower per epoch)")


def run(args) -> int:
    """Run the demo and print the report's location last."""
    from workflows.discovery.demo import run_demo

    report = run_demo(args.out, participants=args.participants, hours=args.hours, seed=args.seed,
                      epochs=args.epochs, max_minutes=args.max_minutes, threads=args.threads,
                      progress=lambda m: print(m, flush=True))
    print(f"report: {report.resolve()}")
    return 0
