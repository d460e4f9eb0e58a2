"""`capture-pipeline demo`: simulate a small cohort, extract features, split, train GM-DGM and M2, report.

The default cohort is 12 participants × 10 h starting at 15:00 on a weekday, so that every recording holds the
commute home, the evening (when the simulated runners run) and the start of the night; Running and Bicycling are
hidden. Training is brief and uses smaller networks (2 × 256 units, 32 latent dimensions) and a higher learning
rate (1e-3) than the paper, to show the method within the time budget; the last line printed is where the
report is.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from .dataset import FEATURES_SUFFIX

#: A Monday afternoon: workdays include the commute home.
DEMO_START = "2016-11-14 15:00:00"
#: Classes whose labels the demo withholds.
HIDDEN = ("Running", "Bicycling")


def choose_split(cohort_dir, participants: int, n_labelled: int, n_test: int, hidden=HIDDEN, min_windows: int = 10,
                 max_seed: int = 200):
    """The first split seed whose test participants hold at least ``min_windows`` windows of every hidden class.

    A small cohort has only a few runners and cyclists; a test set without them could not show whether the model
    found them. Only the bout annotations' classes are looked at (no model is involved), and the chosen seed is
    printed and stored in ``split.json``. Falls back to seed 0 when no seed qualifies.

    Returns
    -------
    (data_dictionary.Split, int)
    """
    from data_dictionary.splits import make_split

    from .dataset import find_feature_files, load_windows

    pids = [f"P{i:03d}" for i in range(1, participants + 1)]
    windows = load_windows(find_feature_files([cohort_dir]), [cohort_dir])
    windows = windows[windows["valid"]]
    for seed in range(max_seed):
        split = make_split(pids, labelled=n_labelled, unlabelled="rest", test=n_test, seed=seed)
        counts = windows.loc[windows["participant"].isin(split.test), "label"].value_counts()
        if all(counts.get(h, 0) >= min_windows for h in hidden):
            return split, seed
    return make_split(pids, labelled=n_labelled, unlabelled="rest", test=n_test, seed=0), 0


def write_features(recording, path) -> pd.DataFrame:
    """The 126 features of a recording (no calibration: CAPTURE-24 CSVs are calibrated) with the ``nonwear``
    flag, written atomically as Parquet."""
    import pyarrow as pa

    from capture_pipeline.features import extract_features
    from capture_pipeline.nonwear import detect_nonwear
    from capture_pipeline.parquet_io import write_table_atomic

    table = extract_features(recording, calibrate=False)
    table = table.copy()  # defragment (extract_features builds it column by column) before adding a column
    table["nonwear"] = detect_nonwear(table)
    write_table_atomic(pa.Table.from_pandas(table, preserve_index=False), path)
    return table


def features_for_folder(raw_dir, out_dir, progress=print) -> list:
    """``<name>.features.parquet`` for every ``*.csv.gz`` recording of a folder, without calibration (CAPTURE-24
    CSVs are calibrated already).

    Uses the batch feature runner (`capture_pipeline.batch.run_batch`, serially here) when it is installed, else
    `extract_features` file by file.
    """
    import capture_pipeline

    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = sorted(raw_dir.glob("*.csv.gz"))
    try:
        from capture_pipeline.batch import JobOptions, run_batch
    except ImportError:  # the batch package is optional for this helper
        run_batch = None
    if run_batch is not None:
        results = run_batch([str(f) for f in files], str(out_dir), JobOptions(calibrate=False), workers=0,
                            progress=False)
        failed = [f"{r.input}: {r.error}" for r in results if r.status == "failed"]
        if failed:
            raise RuntimeError(f"feature extraction failed for {failed}")
        written = sorted(out_dir.glob("*" + FEATURES_SUFFIX))
        if progress:
            progress(f"{len(written)} feature files written by the batch runner to {out_dir}")
        return written
    written = []
    for path in files:
        name = path.name[: -len(".csv.gz")]
        target = out_dir / f"{name}{FEATURES_SUFFIX}"
        t0 = time.perf_counter()
        table = write_features(capture_pipeline.read(path), target)
        written.append(target)
        if progress:
            progress(f"{name}: {len(table)} windows of features in {time.perf_counter() - t0:.1f} s")
    return written


def simulate_features(out_dir, participants, hours: float, seed: int = 0, start=DEMO_START,
                      progress=print) -> list:
    """Simulate participants in memory and write only what training needs: ``PID.features.parquet`` and the bout
    annotations ``PID.annotations.csv`` (as beside a .cwa file), plus ``truth/PID.json``.

    Skipping the 100-Hz CSV (writing and re-reading it takes about three times as long as simulating) is what lets
    the demo and the 40-participant experiment fit the time budget. The device signal is calibrated with the
    simulator's true correction, which is what the CAPTURE-24-like CSV would hold.
    """
    from capture_pipeline.features import extract_features
    from capture_pipeline.nonwear import detect_nonwear
    from capture_pipeline.parquet_io import write_table_atomic
    from capture_pipeline.simulate import simulate_participant
    from capture_pipeline.simulate.cohort import write_annotations

    import pyarrow as pa

    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    pids = [f"P{i:03d}" for i in range(1, participants + 1)] if isinstance(participants, int) else list(participants)
    written = []
    for pid in pids:
        t0 = time.perf_counter()
        rec, truth = simulate_participant(pid, hours, seed, start, per_sample_annotation=False)
        table = extract_features(rec, calibrate=True, calibration=truth.calibration)
        del rec
        table = table.copy()  # defragment (extract_features builds it column by column) before adding a column
        table["nonwear"] = detect_nonwear(table)
        write_table_atomic(pa.Table.from_pandas(table, preserve_index=False), out / f"{pid}{FEATURES_SUFFIX}")
        write_annotations(out / f"{pid}.annotations.csv", truth)
        truth.save(out / "truth" / f"{pid}.json")
        written.append(out / f"{pid}{FEATURES_SUFFIX}")
        if progress:
            progress(f"{pid}: {len(table)} windows in {time.perf_counter() - t0:.1f} s")
    return written


def run_demo(out_dir, participants: int = 12, hours: float = 10.0, seed: int = 3, epochs: int = 20,
             max_minutes: float = 3.0, hidden_units=(256, 256), latent: int = 32, threads: int = 1,
             lr: float = 1e-3, progress=print) -> Path:
    """Run the whole demonstration into ``out_dir`` and return the path of ``report.html``.

    Layout: ``cohort/`` (features, bout annotations, truth), ``split.json``, ``run/`` (models), ``report/``.
    Training is brief (``epochs`` or ``max_minutes`` per model, smaller networks than the paper's 2×500 / 100):
    enough to show the method, not its best numbers.
    """
    from data_dictionary.splits import write_split

    from .report import write_report
    from .train import DiscoveryConfig, prepare_windows, train_model

    say = progress or (lambda *_: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    say(f"[1-2/5] simulating {participants} participants x {hours:g} h (seed {seed}) and extracting features "
        f"into {out / 'cohort'}")
    simulate_features(out / "cohort", participants, hours, seed, progress=say)
    n_test = max(2, participants // 4)
    n_lab = max(2, participants // 4)
    split, split_seed = choose_split(out / "cohort", participants, n_lab, n_test, HIDDEN)
    write_split(split, out / "split.json")
    say(f"[3/5] split (seed {split_seed}): {len(split.labelled)} labelled, {len(split.unlabelled)} unlabelled, "
        f"{len(split.test)} test")
    windows, split, classes = prepare_windows(out / "run", [out / "cohort"], [out / "cohort"], out / "split.json",
                                              progress=say)
    say("[4/5] training GM-DGM and M2 (Running and Bicycling hidden)")
    for name in ("gmdgm", "m2"):
        config = DiscoveryConfig(model=name, hidden_classes=HIDDEN, hidden=tuple(hidden_units),
                                 n_z=latent, epochs=epochs, max_seconds=60.0 * max_minutes, seed=seed, lr=lr,
                                 threads=threads)
        train_model(windows, split, classes, config, out / "run" / name, progress=say)
    say("[5/5] writing the report")
    report = write_report(out / "run", out / "report", progress=say)
    say(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return report
