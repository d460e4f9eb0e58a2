"""A semi-unsupervised training run: window table + split -> trained GM-DGM or M2 in ``RUN/<model>/``.

Setup (spec ``model.md`` §3, §7.3; seed paper appendix classes):

* the model's first outputs are the classes of the label mapping (the seed paper's 8 classes by default), in sorted
  order; ``hidden_classes`` keep their output slot but none of their labels is shown to the model (their windows
  join the unlabelled pool), and classes without a single labelled training window are hidden the same way;
* ``n_extra`` further outputs are free for activities nobody labelled (desk work, standing, chores ...);
* p(y) is `models.priors.activity_prior`: the labelled classes share ``labelled_weight`` (0.5) in proportion to
  their labelled frequency, hidden and extra outputs share the rest equally;
* inputs are the features of valid windows (non-wear and non-finite windows excluded), z-scored with the mean and
  std of the *training* windows (labelled + unlabelled participants; never test), constant columns dropped;
* training runs for ``epochs`` passes over the unlabelled pool (or until ``max_seconds``) and keeps the last
  parameters: no checkpoint is selected on test data (spec §8.4).

Files written to ``RUN/<model>/``: ``model.pt`` (the `models.training.fit` checkpoint), ``run.json`` (configuration,
classes, outputs, prior, standardisation, exclusions, history) and ``standardisation.csv``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from capture_pipeline.atomic import write_json
from capture_pipeline.errors import InputError
from capture_pipeline.features.columns import FEATURE_COLUMNS

from .dataset import Standardiser, count_exclusions

RUN_FILE = "run.json"
MODEL_FILE = "model.pt"
WINDOWS_FILE = "windows.parquet"
SPLIT_FILE = "split.json"
SPLITS_FILE = "split_moves.json"


@dataclass
class DiscoveryConfig:
    """Settings of one training run (defaults: the published code, spec ``model.md`` §2.6 and §6).

    Attributes
    ----------
    model : {"gmdgm", "m2"}
    hidden_classes : tuple of str
        Classes whose labels are withheld (e.g. ``("Running", "Bicycling")``).
    n_extra : int
        Extra outputs for unlabelled activities.
    labelled_weight : float
        Prior mass of the labelled classes.
    hidden, n_z : network widths and latent dimension.
    epochs, max_seconds, batch_labelled, batch_unlabelled, lr, alpha, weight_prior, seed :
        Passed to `models.training.TrainConfig`.
    unmapped : {"unlabelled", "drop"}
        Windows of labelled participants without a visible class: unlabelled pool (default) or dropped.
    clip : float or None
        Standardised inputs are clipped to ±clip.
    threads : int
        torch CPU threads.
    device : str
        "cpu", "cuda" or "auto".
    resume : bool
        Continue from ``model.pt`` of an earlier run with the same data and settings (``epochs`` counts from the
        start of that run, so raise it to train longer).
    split_steps : tuple of int
        GM-DGM only: split moves (`models.splitting`) give the worst-explained unlabelled windows a free output of
        their own at the end of the epochs nearest to these step counts (default 600 and 1200 steps: epochs 2
        and 4 for 30,000 unlabelled windows). Empty: the published training, no split moves.
    posterior_weight : float
        β of the posterior-matching classifier term (`models.dgm` ``loss``); default 1, 0 is the published loss.
        Without both, hidden running and cycling stayed in the Walking and Riding Transport outputs (see
        benchmarks/README.md, "Activity discovery").
    """

    model: str = "gmdgm"
    hidden_classes: tuple = ()
    n_extra: int = 10
    labelled_weight: float = 0.5
    hidden: tuple = (500, 500)
    n_z: int = 100
    epochs: int = 30
    max_seconds: Optional[float] = None
    batch_labelled: int = 100
    batch_unlabelled: int = 100
    lr: float = 3e-4
    alpha: float = 0.5
    weight_prior: float = 1.1
    seed: int = 0
    unmapped: str = "unlabelled"
    clip: Optional[float] = 10.0
    threads: int = 1
    device: str = "cpu"
    resume: bool = False
    split_steps: tuple = (600, 1200)
    posterior_weight: float = 1.0
    extra: dict = field(default_factory=dict)


def write_json_atomic(obj, path) -> None:
    """JSON to a temporary file in the same folder, then renamed over ``path``."""
    write_json(path, obj, default=_jsonable)


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return str(v)


def epochs_for_steps(steps, steps_per_epoch: int) -> tuple:
    """The epochs whose ends are nearest to the given step counts (at least epoch 1, each later than the last)."""
    epochs = []
    for s in sorted(steps):
        e = max(1, round(s / steps_per_epoch))
        if epochs and e <= epochs[-1]:
            e = epochs[-1] + 1
        epochs.append(e)
    return tuple(epochs)


def output_names(classes, hidden: set, n_extra: int) -> list:
    """Display names of the outputs: a labelled class's name; ``U<k>`` for hidden-class slots and extra outputs.

    Hidden slots get no class name because nothing ties them to their class: no label of it was ever seen.
    """
    names = [c if c not in hidden else f"U{i}" for i, c in enumerate(classes)]
    return names + [f"U{len(classes) + j}" for j in range(n_extra)]


def training_arrays(windows: pd.DataFrame, split, classes, hidden: set, unmapped: str = "unlabelled"):
    """Labelled and unlabelled arrays from the valid windows of labelled/unlabelled participants.

    Labels are read only through `data_dictionary.training.training_dataset`, i.e. only from labelled
    participants, and only for the visible (not hidden) classes.

    Returns
    -------
    (TrainingData, y_labelled_in_class_order)
    """
    from data_dictionary.training import training_dataset

    role_of = split.role_of()
    roles = windows["participant"].map(role_of)
    use = windows["valid"].to_numpy() & roles.isin(["labelled", "unlabelled"]).to_numpy()
    visible = [c for c in classes if c not in hidden]
    table = windows.loc[use].copy()
    # Plain objects with None for "no class": numpy's isin cannot compare pandas.NA (string dtype).
    table["label"] = table["label"].astype(object).where(table["label"].notna(), None)
    data = training_dataset(table, split, feature_columns=FEATURE_COLUMNS, classes=visible,
                            unmapped=unmapped)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[data.classes[k]] for k in data.y_labelled], dtype=np.int64)
    return data, y


def train_model(windows: pd.DataFrame, split, classes, config: DiscoveryConfig, out_dir, progress=print) -> dict:
    """Train one model and write ``out_dir/model.pt``, ``run.json`` and ``standardisation.csv``.

    Parameters
    ----------
    windows : pandas.DataFrame
        `dataset.load_windows` output for the participants of ``split``.
    split : data_dictionary.Split
    classes : sequence of str
        All classes of the label mapping (model outputs ``0 … len(classes)-1``, in this order).
    config : DiscoveryConfig
    out_dir : path
    progress : callable or None

    Returns
    -------
    dict
        The content of ``run.json``.
    """
    import torch

    from models import priors
    from models.dgm import MODELS
    from models.evaluation import many_to_one_mapping
    from models.splitting import SplitMoves
    from models.training import TrainConfig, fit

    if config.model not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, not {config.model!r}")
    unknown = sorted(set(config.hidden_classes) - set(classes))
    if unknown:
        raise InputError(None, f"hidden classes {unknown} are not classes of the mapping ({', '.join(classes)})")
    torch.set_num_threads(max(1, int(config.threads)))
    say = progress or (lambda *_: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = list(classes)
    hidden = set(config.hidden_classes)

    data, y_l = training_arrays(windows, split, classes, hidden, config.unmapped)
    counts = np.bincount(y_l, minlength=len(classes))
    # A class without one labelled training window cannot anchor its slot: it is hidden like the withheld ones.
    absent = {c for c, n in zip(classes, counts) if n == 0 and c not in hidden}
    effectively_hidden = hidden | absent
    if len(effectively_hidden) == len(classes):
        raise InputError(None, "no labelled training window of any class: check the annotations and the split")
    if data.x_unlabelled.shape[0] == 0:
        raise InputError(None, "no unlabelled training windows")
    std = Standardiser.fit(np.vstack([data.x_labelled, data.x_unlabelled]), FEATURE_COLUMNS, clip=config.clip)
    frame_l = pd.DataFrame(data.x_labelled, columns=FEATURE_COLUMNS)
    frame_u = pd.DataFrame(data.x_unlabelled, columns=FEATURE_COLUMNS)
    x_l, x_u = std.transform(frame_l), std.transform(frame_u)
    hidden_idx = [i for i, c in enumerate(classes) if c in effectively_hidden]
    prior = priors.activity_prior(counts, hidden_idx, config.n_extra, config.labelled_weight)
    torch.manual_seed(config.seed)  # the initial weights too: the same data and seed give the same model
    model = MODELS[config.model](
        x_l.shape[1], len(classes), config.n_extra, likelihood="gaussian", hidden=tuple(config.hidden),
        n_z=config.n_z, prior=prior,
    )
    say(f"{config.model}: {x_l.shape[0]} labelled windows ({', '.join(f'{c} {n}' for c, n in zip(classes, counts) if n)}), "
        f"{x_u.shape[0]} unlabelled windows, {x_l.shape[1]} features, {model.n_y} outputs; "
        f"hidden: {', '.join(sorted(effectively_hidden)) or 'none'}")
    train_config = TrainConfig(
        epochs=config.epochs, batch_labelled=config.batch_labelled, batch_unlabelled=config.batch_unlabelled,
        lr=config.lr, alpha=config.alpha, weight_prior=config.weight_prior, seed=config.seed,
        posterior_weight=config.posterior_weight,
        max_seconds=config.max_seconds, device=config.device, num_threads=config.threads, restore_best=False,
    )
    start = time.perf_counter()

    # Split moves (GM-DGM): the moves so far are kept in SPLITS_FILE, so a resumed run protects their targets too.
    steps_per_epoch = math.ceil(x_u.shape[0] / min(config.batch_unlabelled, x_u.shape[0]))
    split_epochs = epochs_for_steps(config.split_steps, steps_per_epoch)
    splits = SplitMoves(model, x_u, hidden_idx + list(range(len(classes), model.n_y)), split_epochs,
                        path=out_dir / SPLITS_FILE, resume=config.resume, say=say)

    def report_epoch(record):
        say(f"  epoch {record['epoch']}: loss {record['loss']:.1f}, unlabelled bound {record['elbo_unlabelled']:.1f}, "
            f"log q(y|x) labelled {record['log_q_y_labelled']:.3f} ({record['seconds']:.0f} s)")
        splits.after_epoch(record["epoch"])

    if config.resume and (out_dir / MODEL_FILE).is_file():
        say(f"{config.model}: resuming from {out_dir / MODEL_FILE}")
    result = fit(model, (x_l, y_l), x_u, train_config, checkpoint=out_dir / MODEL_FILE, progress=False,
                 callback=report_epoch, resume=config.resume)
    seconds = time.perf_counter() - start
    model.cpu()
    names = output_names(classes, effectively_hidden, config.n_extra)
    fitted = many_to_one_mapping(model.predict(x_l), y_l, n_clusters=model.n_y)
    outputs = []
    for k in range(model.n_y):
        kind = "extra" if k >= len(classes) else ("hidden" if classes[k] in effectively_hidden else "labelled")
        outputs.append({
            "index": k, "name": names[k], "kind": kind, "slot_class": classes[k] if k < len(classes) else None,
            "class": classes[k] if kind == "labelled" else None,
            "labelled_majority": classes[fitted[k]] if fitted[k] >= 0 else None,
            "prior": float(prior[k]),
        })
    role_of = split.role_of()
    info = {
        "format": "capture-pipeline-discovery-run", "version": 1,
        "model": config.model, "config": asdict(config), "train_config": asdict(train_config),
        "model_config": model.config(),
        "classes": classes, "hidden_classes": sorted(hidden), "absent_classes": sorted(absent),
        "outputs": outputs, "prior": prior.tolist(),
        "labelled_counts": {c: int(n) for c, n in zip(classes, counts)},
        "n_labelled": int(x_l.shape[0]), "n_unlabelled": int(x_u.shape[0]),
        "participants": {r: list(getattr(split, r)) for r in ("labelled", "unlabelled", "test")},
        "missing_participants": list(data.missing_participants),
        "exclusions": count_exclusions(windows, role_of).to_dict(),
        "standardisation": std.to_dict(),
        "split_epochs": list(split_epochs), "splits": splits.done,
        "history": result.history, "epochs_run": result.epochs_run, "steps": result.steps,
        "train_seconds": result.train_seconds, "device": result.device,
    }
    write_json_atomic(info, out_dir / RUN_FILE)
    pd.DataFrame({"feature": std.columns, "mean": std.mean, "std": std.std}).to_csv(
        out_dir / "standardisation.csv.tmp", index=False)
    os.replace(out_dir / "standardisation.csv.tmp", out_dir / "standardisation.csv")
    say(f"{config.model}: {result.epochs_run} epochs, {result.steps} steps in {seconds:.0f} s -> {out_dir}")
    return info


def load_run(model_dir):
    """The trained model (CPU, eval mode), its run information and its `Standardiser`.

    Raises
    ------
    InputError
        The directory has no ``run.json`` / ``model.pt`` from `train_model`.
    """
    from models.training import load_checkpoint

    model_dir = Path(model_dir)
    run_path, model_path = model_dir / RUN_FILE, model_dir / MODEL_FILE
    if not run_path.is_file() or not model_path.is_file():
        raise InputError(model_dir, f"not a trained model directory (needs {RUN_FILE} and {MODEL_FILE})")
    with open(run_path, encoding="utf-8") as fh:
        info = json.load(fh)
    if info.get("format") != "capture-pipeline-discovery-run":
        raise InputError(run_path, "not a capture-pipeline discovery run file")
    # The checkpoint holds the last parameters; fit() stores no "best" state without validation data.
    model, _ = load_checkpoint(model_path)
    model.eval()
    return model, info, Standardiser.from_dict(info["standardisation"])


def model_dirs(run_dir) -> dict:
    """Trained models of a run directory: ``{"gmdgm": path, "m2": path}`` for those present."""
    run_dir = Path(run_dir)
    found = {name: run_dir / name for name in ("gmdgm", "m2") if (run_dir / name / RUN_FILE).is_file()}
    if not found:
        if (run_dir / RUN_FILE).is_file():  # a model directory given directly
            with open(run_dir / RUN_FILE, encoding="utf-8") as fh:
                return {json.load(fh)["model"]: run_dir}
        raise InputError(run_dir, "no trained model here (expected gmdgm/ or m2/ with run.json; run 'train' first)")
    return found


def prepare_windows(run_dir, feature_inputs, annotations_dirs, split_path, mapping=None, progress=print,
                    **label_options):
    """Build (or reuse) ``RUN/windows.parquet``: every window of the split's participants with its labels.

    The table is reused when it was built from the same feature inputs, annotation directories, split file and
    mapping; ``RUN/split.json`` keeps a copy of the split.

    Returns
    -------
    (pandas.DataFrame, data_dictionary.Split, list of str)
        The window table, the split and the classes of the mapping.
    """
    import shutil

    from capture_pipeline.parquet_io import write_table_atomic
    from data_dictionary.mapping import get_mapping
    from data_dictionary.splits import read_split

    from .dataset import find_feature_files, load_windows

    import pyarrow as pa

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    split = read_split(split_path)
    mapping = get_mapping(mapping)
    files = find_feature_files(feature_inputs)
    wanted = set(split.labelled) | set(split.unlabelled) | set(split.test)
    absent = sorted(wanted - set(files))
    if len(absent) == len(wanted):
        raise InputError(split_path, "none of the split's participants has a feature file in "
                         f"{', '.join(map(str, feature_inputs))}")
    if absent:
        (progress or print)(f"warning: {len(absent)} participant(s) of the split have no feature file: {absent[:5]}")
    key = {"features": sorted(str(files[p].resolve()) for p in files if p in wanted),
           "annotations": [str(Path(d).resolve()) for d in annotations_dirs],
           "split": Path(split_path).read_text(encoding="utf-8"), "mapping": mapping.name,
           "label_options": {k: str(v) for k, v in sorted(label_options.items())}}
    key_path, table_path = run_dir / "windows.json", run_dir / WINDOWS_FILE
    if table_path.is_file() and key_path.is_file():
        with open(key_path, encoding="utf-8") as fh:
            if json.load(fh) == key:
                (progress or print)(f"reusing {table_path}")
                return pd.read_parquet(table_path), split, list(mapping.classes)
    windows = load_windows(files, annotations_dirs, mapping, participants=wanted, cache_dir=run_dir / "labels",
                           progress=progress,
                           **label_options)
    write_table_atomic(pa.Table.from_pandas(windows, preserve_index=False), table_path)
    write_json_atomic(key, key_path)
    if Path(split_path).resolve() != (run_dir / SPLIT_FILE).resolve():
        shutil.copyfile(split_path, run_dir / (SPLIT_FILE + ".tmp"))
        os.replace(run_dir / (SPLIT_FILE + ".tmp"), run_dir / SPLIT_FILE)
    return windows, split, list(mapping.classes)
