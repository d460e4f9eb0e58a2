"""`capture-pipeline train`: semi-unsupervised GM-DGM / M2 on feature tables, window labels and a split."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = ("Train GM-DGM and/or M2 on feature Parquet files with window labels from the annotations and a "
        "participant split; writes RUN/<model>/ (model, configuration, standardisation, output->class mapping).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the train command."""
    p.add_argument("--features", nargs="+", required=True, metavar="DIR_OR_FILE",
                   help="feature tables: <name>.features.parquet files or folders of them")
    p.add_argument("--annotations", nargs="*", default=None, metavar="DIR",
                   help="folders with each participant's annotations: PID.labels.parquet, PID.annotations.csv "
                   "(start,end,annotation bouts) or the raw CAPTURE-24 PID.csv.gz (default: the --features folders)")
    p.add_argument("--split", required=True, help="split JSON from 'capture-pipeline split'")
    p.add_argument("--model", choices=["gmdgm", "m2", "both"], default="gmdgm", help="model(s) to train")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder (created; models go to RUN/<model>/)")
    p.add_argument("--hide", nargs="*", default=[], metavar="CLASS",
                   help="classes whose labels are withheld, e.g. --hide Running Bicycling")
    p.add_argument("--mapping", default=None,
                   help="annotation->class mapping: 'paper' (default, the seed paper's CPA classes), a scheme "
                   "(Willetts2018, Walmsley2020, ...) or a CSV file")
    p.add_argument("--extra", type=int, default=10, help="extra outputs for unlabelled activities (default 10)")
    p.add_argument("--epochs", type=int, default=30, help="passes over the unlabelled windows (default 30)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after the epoch that passes this training time (in total, resumed runs included)")
    p.add_argument("--hidden-units", type=int, nargs="+", default=[500, 500], help="MLP widths (default 500 500)")
    p.add_argument("--latent", type=int, default=100, help="latent dimension n_z (default 100)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (default 3e-4, the published value)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a busy 2-core machine, 2 threads made epochs ~4x slower; "
                   "raise it on a machine of your own)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    from workflows.discovery.train import DiscoveryConfig

    defaults = DiscoveryConfig()
    p.add_argument("--split-steps", type=int, nargs="*", default=list(defaults.split_steps), metavar="STEP",
                   help="GM-DGM: split moves (models.splitting) at the ends of the epochs nearest to these step "
                   "counts (default %(default)s); give the flag alone for the published training without them")
    p.add_argument("--posterior-weight", type=float, default=defaults.posterior_weight, metavar="BETA",
                   help="weight of the term pulling q(y|x) towards the outputs with the best bound (default "
                   "%(default)s; 0: the published loss)")
    p.add_argument("--resume", action="store_true",
                   help="continue RUN/<model>/model.pt up to --epochs in total (same data and settings)")


def run(args) -> int:
    """Build the window table (cached in RUN/windows.parquet) and train the model(s)."""
    import os

    from workflows.discovery.train import DiscoveryConfig, prepare_windows, train_model

    # Without --annotations, look beside the features (e.g. PID.annotations.csv written next to them).
    annotations = args.annotations if args.annotations else [d for d in args.features if os.path.isdir(d)]
    windows, split, classes = prepare_windows(args.out, args.features, annotations, args.split, args.mapping)
    names = ["gmdgm", "m2"] if args.model == "both" else [args.model]
    for name in names:
        config = DiscoveryConfig(
            model=name, hidden_classes=tuple(args.hide), n_extra=args.extra, hidden=tuple(args.hidden_units),
            n_z=args.latent, epochs=args.epochs, lr=args.lr, seed=args.seed, threads=args.threads,
            device=args.device, resume=args.resume, split_steps=tuple(args.split_steps),
            posterior_weight=args.posterior_weight,
            max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
        )
        train_model(windows, split, classes, config, f"{args.out}/{name}", progress=lambda m: print(m, flush=True))
    print(f"trained {', '.join(names)} in {args.out}; next: capture-pipeline report {args.out} --out REPORT")
    return 0
