"""`capture-pipeline simulate`: write a simulated CAPTURE-24-like cohort (CSV and/or CWA) with its truth."""

import argparse

NAME = "simulate"
HELP = (
    "Simulate a cohort of wrist accelerometer recordings with known activities, written like CAPTURE-24 "
    "(PNNN.csv.gz, metadata.csv) and/or as raw Axivity files (cwa/PNNN.cwa), plus truth/PNNN.json."
)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_arguments(p):
    p.add_argument("--participants", type=_positive_int, default=4, help="number of participants (P001…), default 4")
    p.add_argument("--hours", type=_positive_float, default=24.0, help="hours per recording, default 24")
    p.add_argument("--seed", type=_seed, default=0, help="cohort seed; the same seed gives identical files")
    p.add_argument("--format", choices=["csv", "cwa", "both"], default="csv",
                   help="csv: CAPTURE-24 PNNN.csv.gz (calibrated, 100 Hz); cwa: raw AX3 cwa/PNNN.cwa plus "
                        "annotations/PNNN.csv; both")  # fmt: skip
    p.add_argument("--start", default=None,
                   help="start time of every recording, e.g. '2016-11-13 08:00' (default: a random morning each)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def run(args) -> int:
    import sys
    import time

    from capture_pipeline.simulate import simulate_cohort

    t0 = time.perf_counter()
    report = None if args.quiet else (lambda msg: print(msg, flush=True))
    try:
        table = simulate_cohort(
            args.out, args.participants, args.hours, args.seed, args.format, start=args.start, progress=report
        )
    except ValueError as exc:
        print(f"capture-pipeline simulate: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(
            f"{len(table)} participant(s), {args.hours:g} h each, seed {args.seed}, written to {args.out} "
            f"in {time.perf_counter() - t0:.1f} s (metadata.csv, truth/)"
        )
    return 0
