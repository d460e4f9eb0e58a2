"""`capture-pipeline features`: many recordings to feature tables and summaries, resumable, on Dask."""

import argparse

NAME = "features"
HELP = ("Compute the 126 features per window, non-wear and a summary for many recordings (files, directories, "
        "globs), on all cores or a Dask cluster; reruns skip finished files.")  # fmt: skip

EPILOG = """\
outputs (in --out DIR):
  <name>.features.parquet        features per window (+ participant, nonwear); the folder reads as one
                                 table with pandas.read_parquet(DIR) or dask.dataframe.read_parquet(DIR)
  _summary/<name>.summary.json   per-file summary (device, QC, calibration, wear time)
  _batch.csv                     input, name, status (done/skipped/failed), error, seconds, windows

exit status: 0 all done or skipped, 1 some input failed, 143 stopped by SIGTERM (rerun to finish).
examples:
  capture-pipeline features data/ --out feats                     # every core of this machine
  capture-pipeline features 'ukb/**/*.cwa.gz' --out feats --workers 8
  capture-pipeline features list/*.cwa --out feats --scheduler tcp://head-node:8786
"""


def add_arguments(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files (.cwa, .cwa.gz, .csv, .csv.gz), directories "
                   "(searched recursively) or glob patterns (quote them; ** recurses)")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="local Dask worker processes (default: one per core, at most one per 1.5 GB of memory); "
                            "0 = no Dask, one process")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="use a running Dask scheduler (e.g. tcp://host:8786) instead of a local cluster")
    p.add_argument("--epoch-s", type=float, default=30.0, help="window length in seconds (default 30)")
    p.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                   help="autocalibrate each file on its own still periods (default: on)")
    p.add_argument("--calibration", metavar="FILE.json",
                   help="apply these coefficients to every file instead of fitting (JSON as written by "
                        "CalibrationCoefficients.to_json)")
    nw = p.add_mutually_exclusive_group()
    nw.add_argument("--nonwear", dest="mask_nonwear", action="store_true", default=True,
                    help="set the features of non-wear windows to NaN (default); a nonwear column is always added")
    nw.add_argument("--keep-nonwear", dest="mask_nonwear", action="store_false",
                    help="keep the feature values of non-wear windows (only flag them)")
    p.add_argument("--time-mode", choices=["anchor", "reference"], default="anchor",
                   help="CWA time base: device anchors (default) or the v2.3.0 reference reader's")
    p.add_argument("--timezone", metavar="ZONE",
                   help="IANA zone of the device clocks (e.g. Europe/London): adds time_utc and time_local columns")
    p.add_argument("--chunk-blocks", type=int, default=None, metavar="N",
                   help="CWA data blocks per chunk (default 72000, a day at 100 Hz; lower it to use less memory)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no final line; failures are still logged")


def run(args) -> int:
    import os
    import signal
    import sys

    from capture_pipeline.batch import JobOptions, run_batch
    from capture_pipeline.batch.outputs import BATCH_CSV
    from capture_pipeline.batch.plan import DEFAULT_CHUNK_BLOCKS

    if args.timezone:
        from capture_pipeline.timezone import get_zone

        get_zone(args.timezone)  # an unknown zone is an error before any work starts
    calibration = None
    if args.calibration:
        from capture_pipeline.calibration import CalibrationCoefficients

        calibration = CalibrationCoefficients.from_json(args.calibration).to_dict()
    options = JobOptions(
        epoch_s=args.epoch_s, calibrate=args.calibrate, calibration=calibration,
        calibration_path=os.path.abspath(args.calibration) if args.calibration else None,
        mask_nonwear=args.mask_nonwear, time_mode=args.time_mode, timezone=args.timezone,
    )  # fmt: skip

    def on_sigterm(signum, frame):
        # unwinds through the runner: workers are stopped, _batch.csv is written, no output is half-written
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        results = run_batch(
            args.inputs, args.out, options, workers=args.workers, scheduler=args.scheduler,
            chunk_blocks=args.chunk_blocks or DEFAULT_CHUNK_BLOCKS, progress=not args.quiet and sys.stderr.isatty(),
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGTERM, previous)
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    if not args.quiet:
        print(f"{len(results)} inputs: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
              f"-> {os.path.join(args.out, BATCH_CSV)}")  # fmt: skip
    return 1 if counts["failed"] else 0
