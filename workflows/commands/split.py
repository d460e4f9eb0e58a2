"""`capture-pipeline split`: draw a participant-level labelled / unlabelled / test split and save it as JSON."""

from __future__ import annotations

import argparse
import os

NAME = "split"
HELP = "Split participants into labelled, unlabelled and test sets (no participant in two sets); writes JSON."


def _size(text: str):
    """A set size: a count ("20"), a fraction ("0.15") or "rest"."""
    if text == "rest":
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count, a fraction or 'rest'") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a fraction must be between 0 and 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the split command."""
    parser.add_argument(
        "--participants", required=True, metavar="DIR_OR_LIST",
        help="folder of recordings (one participant per file, id = file name without extension) or a file "
        "listing ids (one per line, or a CSV with a 'participant' or 'pid' column)",
    )
    parser.add_argument("--preset", choices=["paper", "all151", "benchmark"], default="paper",
                        help="sizes: 'paper' = 20 labelled / 92 unlabelled / 20 test (default); "
                        "'all151' = 20 / rest / 20 (--labelled, --unlabelled, --test override these); "
                        "'benchmark' = the fixed CAPTURE-24 benchmark split, P001-P101 labelled, P102-P151 test")
    for role in ("labelled", "unlabelled", "test"):
        parser.add_argument(f"--{role}", type=_size, default=None, metavar="N",
                            help=f"size of the {role} set: a count, a fraction of all participants, or 'rest'")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the draw, recorded in the file (default 0)")
    parser.add_argument("--out", required=True, help="split file to write (JSON)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--windows", metavar="TABLE",
                        help="optional window-label table (CSV or Parquet with 'participant' and 'label' columns, "
                        "e.g. features joined with window labels): report the class balance of the split")
    parser.add_argument("--balance-out", metavar="CSV", help="write the class-balance report here (with --windows)")


def _read_table(path):
    import pandas as pd

    from capture_pipeline.errors import InputError

    if not os.path.isfile(path):
        raise InputError(path, "window table not found")
    try:
        if path.lower().endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={"participant": str, "label": "string", "reason": "string"})
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise InputError(path, f"cannot read the window table ({exc})") from exc


def run(args) -> int:
    """Draw the split, write it atomically, print a summary (and the class balance with --windows)."""
    from capture_pipeline.errors import InputError
    from data_dictionary.splits import PRESETS, ROLES, benchmark_split, make_split, participants_from, write_split

    if os.path.exists(args.out) and not args.overwrite:
        raise InputError(args.out, "split file exists already; pass --overwrite to replace it")
    if args.balance_out and not args.windows:
        raise InputError(args.balance_out, "--balance-out needs --windows (the table to count)")
    ids = participants_from(args.participants)
    if args.preset == "benchmark":
        given = [f"--{r}" for r in ROLES if getattr(args, r) is not None]
        if given:
            raise InputError(None, f"--preset benchmark is a fixed split; {', '.join(given)} cannot change it")
        split = benchmark_split(ids, source=args.participants)
    else:
        sizes = dict(PRESETS[args.preset])
        for role in ROLES:
            if getattr(args, role) is not None:
                sizes[role] = getattr(args, role)
        split = make_split(ids, seed=args.seed, source=args.participants, **sizes)
    table = _read_table(args.windows) if args.windows else None
    if table is not None:
        from data_dictionary.training import class_balance

        try:
            balance = class_balance(table, split)
        except InputError as exc:
            raise InputError(args.windows, exc.problem) from exc
    write_split(split, args.out)
    counts = ", ".join(f"{len(getattr(split, r))} {r}" for r in (*ROLES, "unused"))
    drawn = f"seed {split.seed}" if split.seed is not None else "fixed split, no random draw"
    print(f"{args.out}: {counts} (of {len(ids)} participants from {args.participants}), {drawn}")
    if table is not None:
        if args.balance_out:
            _write_csv_atomic(balance, args.balance_out)
            print(f"class balance written to {args.balance_out}")
        else:
            print(balance.to_string())
    return 0


def _write_csv_atomic(frame, path) -> None:
    from capture_pipeline.atomic import atomic_path

    with atomic_path(path) as tmp:
        frame.to_csv(tmp)
