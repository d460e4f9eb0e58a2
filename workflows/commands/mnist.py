"""`capture-pipeline mnist`: train GM-DGM or M2 on the semi-unsupervised (Fashion-)MNIST protocol and score it.

Protocol (spec ``model.md`` §3, §6–§8): hidden classes (default 3–7) have no labels, the others 100 labels each
(120 for Fashion-MNIST, the original ``-p 0.02`` of 60 000); n_y = 10 + N_extra outputs with the prior 1/10 per
labelled class and the remaining mass shared equally by the hidden and extra outputs. Train = first 50 000 official
training images, validation = last 10 000 (used for early stopping, checkpoint choice and the cluster→class
mapping), test = t10k.
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path

from capture_pipeline.atomic import write_json

NAME = "mnist"
HELP = "Train GM-DGM or M2 on semi-unsupervised (Fashion-)MNIST; writes metrics.json and confusion matrices."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder with the four MNIST-format idx files (.gz or not)")
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist",
                        help="name recorded in the results; sets the default labels per class (100 / 120)")
    parser.add_argument("--model", choices=["gmdgm", "m2"], default="gmdgm")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and batch order")
    parser.add_argument("--epochs", type=int, default=100, help="maximum passes over the unlabelled set")
    parser.add_argument("--out", required=True, help="run folder (metrics.json, confusion matrices, checkpoint)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    parser.add_argument("--patience", type=int, default=20,
                        help="early stopping: epochs without a better validation accuracy (0 disables)")
    parser.add_argument("--hidden-classes", type=int, nargs="*", default=[3, 4, 5, 6, 7])
    parser.add_argument("--labels-per-class", type=int, default=None)
    parser.add_argument("--label-seed", type=int, default=0,
                        help="seed of the labelled-subset draw (the original used one subset, seed 0, for all runs)")
    parser.add_argument("--n-extra", type=int, default=5, help="extra outputs N_aug")
    parser.add_argument("--alpha", type=float, default=0.5, help="classifier weight (published code: 0.5)")
    parser.add_argument("--weight-prior", type=float, default=1.1, help="λ of the weight prior (published code: 1.1)")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=100, help="labelled and unlabelled examples per step")
    parser.add_argument("--hidden", type=int, nargs="+", default=[500, 500], help="MLP hidden widths")
    parser.add_argument("--n-z", type=int, default=100)
    parser.add_argument("--balance", choices=["average", "weighted"], default="average")
    parser.add_argument("--posterior-weight", type=float, default=0.0, metavar="BETA",
                        help="β of the term pulling q(y|x) towards the outputs with the best bound (default 0: the "
                        "published loss; see models.dgm)")
    parser.add_argument("--split-epochs", type=int, nargs="*", default=[], metavar="EPOCH",
                        help="GM-DGM: split moves after these epochs (models.splitting; default none: the paper)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke tests)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop after the epoch that exceeds this training time (resume later with --resume)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _write_csv(path: Path, matrix, row_names, col_names) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["true\\predicted", *col_names])
        for name, row in zip(row_names, matrix):
            w.writerow([name, *map(int, row)])


def _plot_confusions(path: Path, raw, mapped, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, m, name in ((axes[0], raw, "model output"), (axes[1], mapped, "mapped class (many-to-one, validation)")):
        norm = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j]:
                    ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xlabel(name)
        ax.set_ylabel("true class")
        ax.set_xticks(range(m.shape[1]))
        if m is mapped:  # the last column holds outputs without a class
            ax.set_xticklabels([str(c) for c in range(m.shape[1] - 1)] + ["none"])
        ax.set_yticks(range(m.shape[0]))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _print_epoch(record: dict) -> None:
    val = f", validation many-to-one {record['val_many_to_one']:.4f}" if "val_many_to_one" in record else ""
    print(f"epoch {record['epoch']}: loss {record['loss']:.2f}, unlabelled bound {record['elbo_unlabelled']:.2f}"
          f"{val} ({record['seconds']:.0f} s)", flush=True)


def run(args) -> int:
    import numpy as np
    import torch

    from models import MODELS, evaluation
    from models.datasets import semi_unsupervised_split
    from models.priors import semi_unsupervised_prior
    from models.splitting import SplitMoves
    from models.training import TrainConfig, fit

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labels_per_class = args.labels_per_class or (120 if args.dataset == "fashion-mnist" else 100)
    data = semi_unsupervised_split(args.data, args.hidden_classes, labels_per_class, args.label_seed)
    n_classes = 10
    base = None
    if args.dataset == "fashion-mnist":  # the original uses the empirical training class frequencies
        base = np.bincount(np.concatenate([data.y_labelled, data.y_unlabelled]), minlength=n_classes)
    prior = semi_unsupervised_prior(n_classes, data.hidden_classes, args.n_extra, base)
    torch.manual_seed(args.seed)  # the initialisation is part of the seeded run
    model = MODELS[args.model](
        data.x_labelled.shape[1], n_classes, args.n_extra, likelihood="bernoulli",
        hidden=tuple(args.hidden), n_z=args.n_z, prior=prior,
    )
    config = TrainConfig(
        epochs=args.epochs, batch_labelled=args.batch_size, batch_unlabelled=args.batch_size, lr=args.lr,
        alpha=args.alpha, weight_prior=args.weight_prior, balance=args.balance, binarize=True, seed=args.seed,
        posterior_weight=args.posterior_weight,
        patience=args.patience or None, device=args.device, num_threads=args.threads, max_steps=args.max_steps,
        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
    )
    free = list(data.hidden_classes) + list(range(n_classes, model.n_y))
    splits = SplitMoves(model, data.x_unlabelled, free, args.split_epochs, path=out / "split_moves.json",
                        resume=args.resume, say=lambda m: print(m, flush=True))

    def after_epoch(record):
        _print_epoch(record)
        splits.after_epoch(record["epoch"])

    started = time.time()
    result = fit(
        model, (data.x_labelled, data.y_labelled), data.x_unlabelled, config,
        validation=(data.x_val, data.y_val), checkpoint=out / "checkpoint.pt", resume=args.resume,
        progress=not args.no_progress, callback=after_epoch,
    )
    # Scoring: the best-validation parameters (restored by fit); inputs are raw grey levels, as in the original.
    val_out = model.predict(data.x_val)
    test_out = model.predict(data.x_test)
    scores = evaluation.evaluate_clusters(test_out, data.y_test, val_out, data.y_val, n_clusters=model.n_y)
    raw = evaluation.confusion_matrix(data.y_test, test_out, n_classes, model.n_y)
    hidden_mask = np.isin(data.y_test, data.hidden_classes)
    mapped_pred = evaluation.apply_mapping(test_out, scores["mapping"])
    # Outputs that received no validation example have no class (-1): a last column "unmapped", all errors.
    unmapped_col = np.where(mapped_pred < 0, n_classes, mapped_pred)
    mapped = evaluation.confusion_matrix(data.y_test, unmapped_col, n_classes, n_classes + 1)
    # Calinski–Harabasz (the seed paper's clustering score) on the test set, in the input space and in the space
    # of E[z|x] under q, for the model's outputs and for the true classes.
    latent = model.latent_mean(data.x_test)
    calinski = {
        "input_outputs": evaluation.calinski_harabasz(data.x_test, test_out),
        "input_true_classes": evaluation.calinski_harabasz(data.x_test, data.y_test),
        "latent_outputs": evaluation.calinski_harabasz(latent, test_out),
        "latent_true_classes": evaluation.calinski_harabasz(latent, data.y_test),
    }
    metrics = {
        "dataset": args.dataset, "model": args.model, "seed": args.seed,
        "test_many_to_one": scores["many_to_one"], "test_hungarian": scores["hungarian"],
        "test_many_to_one_transductive": scores["many_to_one_transductive"],
        "test_hungarian_transductive": scores["hungarian_transductive"],
        "test_accuracy_hidden_classes": float(np.mean(mapped_pred[hidden_mask] == data.y_test[hidden_mask])),
        "test_accuracy_labelled_classes": float(np.mean(mapped_pred[~hidden_mask] == data.y_test[~hidden_mask])),
        "test_per_class_accuracy": scores["per_class_accuracy"],
        "test_calinski_harabasz": calinski,
        "val_many_to_one": result.best_score, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "epochs_requested": args.epochs, "stopped_early": result.stopped_early, "steps": result.steps,
        "train_seconds": round(result.train_seconds, 1), "wall_seconds_this_call": round(time.time() - started, 1),
        "seconds_per_epoch": round(result.train_seconds / max(result.epochs_run, 1), 2),
        "mapping_val": scores["mapping"], "hungarian_mapping_val": scores["hungarian_mapping"],
        "outputs_used_test": int(np.unique(test_out).size),
        "protocol": {
            "hidden_classes": data.hidden_classes, "labels_per_class": data.labels_per_class,
            "label_seed": data.label_seed, "n_extra": args.n_extra, "prior": [round(p, 6) for p in prior],
            "n_labelled": int(len(data.y_labelled)), "n_unlabelled": int(len(data.y_unlabelled)), **data.info,
            "train_inputs": "dynamically binarised", "eval_inputs": "grey levels (not binarised)",
            "model_selection": "best validation many-to-one accuracy (never test)",
        },
        "model_config": {k: v for k, v in model.config().items() if k != "prior"},
        "train_config": {k: getattr(config, k) for k in (
            "epochs", "batch_labelled", "batch_unlabelled", "lr", "alpha", "weight_prior", "balance",
            "clip_value", "binarize", "seed", "patience", "max_steps", "posterior_weight")},
        "split_epochs": sorted(args.split_epochs), "split_moves": splits.done,
        "environment": {"torch": torch.__version__, "device": result.device, "threads": torch.get_num_threads(),
                        "python": platform.python_version(), "machine": platform.machine()},
        "history": [{k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v) for k, v in r.items()}
                    for r in result.history],
    }
    write_json(out / "metrics.json", metrics, indent=1)
    classes = [str(c) for c in range(n_classes)]
    _write_csv(out / "confusion_matrix.csv", raw, classes, [f"out{k}" for k in range(model.n_y)])
    _write_csv(out / "confusion_matrix_mapped.csv", mapped, classes, classes + ["unmapped"])
    np.save(out / "test_outputs.npy", test_out.astype(np.int8))
    _plot_confusions(out / "confusion_matrix.png", raw, mapped,
                     f"{args.dataset} {args.model} seed {args.seed}: test many-to-one {scores['many_to_one']:.4f}, "
                     f"Hungarian {scores['hungarian']:.4f}")
    print(f"{args.dataset} {args.model} seed {args.seed}: test many-to-one {scores['many_to_one']:.4f} "
          f"(transductive {scores['many_to_one_transductive']:.4f}), Hungarian {scores['hungarian']:.4f}; "
          f"best epoch {result.best_epoch}/{result.epochs_run}; {result.train_seconds:.0f} s -> {out}")
    return 0
