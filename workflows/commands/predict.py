"""`capture-pipeline predict`: per-window cluster and class probabilities for new participants, on Dask."""

from __future__ import annotations

import argparse

NAME = "predict"
HELP = ("Apply a trained model to feature tables: per-window cluster and class probabilities "
        "(<name>.predictions.parquet) and minutes per cluster per participant and day (time_per_cluster.csv); "
        "runs on a local Dask cluster or on --scheduler.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the predict command."""
    p.add_argument("run", metavar="RUN", help="run folder from 'capture-pipeline train' (or one model folder)")
    p.add_argument("features", nargs="+", metavar="FEATURES", help="<name>.features.parquet files or folders")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--model", choices=["gmdgm", "m2"], default=None,
                   help="which model of the run (default: gmdgm when trained, else m2)")
    p.add_argument("--workers", type=int, default=2,
                   help="local Dask worker processes, one thread each (default 2; 0 = no Dask, in this process)")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, e.g. tcp://host:8786")


def run(args) -> int:
    """Predict every file; exit code 1 if any file failed (each failure is listed in predict.json)."""
    from capture_pipeline.errors import InputError
    from workflows.discovery.predict import feature_inputs, run_predictions
    from workflows.discovery.train import model_dirs

    dirs = model_dirs(args.run)
    name = args.model or ("gmdgm" if "gmdgm" in dirs else "m2")
    if name not in dirs:
        raise InputError(args.run, f"no trained {name} model in this run (found: {', '.join(dirs)})")
    files = feature_inputs(args.features)
    summary = run_predictions(dirs[name], files, args.out, workers=args.workers, scheduler=args.scheduler,
                              progress=lambda m: print(m, flush=True))
    print(f"{summary['ok']} of {summary['files']} file(s) predicted with {name} in {summary['seconds']:.1f} s; "
          f"outputs in {args.out} (time_per_cluster.csv, *.predictions.parquet)")
    for failure in summary["failed"]:
        print(f"failed: {failure['file']}: {failure['error']}")
    return 1 if summary["failed"] else 0
