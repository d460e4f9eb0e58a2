"""Apply a trained model to feature tables at scale: one Dask task per participant file.

Each task reads ``<name>.features.parquet``, standardises with the run's *training* statistics, and writes
``<name>.predictions.parquet`` (atomically) with one row per window:

* ``time``, ``participant``, ``valid`` (False for non-wear windows and windows with a non-finite feature);
* ``cluster`` (output index, -1 when not valid) and ``cluster_name`` (the class name for a labelled-class output,
  ``U<k>`` otherwise);
* ``p_<output name>``: q(y|x) of every output (cluster probabilities);
* ``class`` and ``pc_<class>``: class probabilities, i.e. q(y|x) of the labelled classes' outputs, plus
  ``pc_unlabelled_outputs``, the total of the outputs that no label names (hidden slots and extra outputs).

The task returns the minutes per cluster per calendar day (device clock; 30-s windows count 0.5 min, excluded
windows are counted under ``(excluded)``), which the driver gathers into ``time_per_cluster.csv`` (long:
participant, date, cluster, minutes) and ``time_per_cluster_wide.csv`` (one row per participant and day).
"""

from __future__ import annotations

import functools
import os
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from capture_pipeline.errors import CapturePipelineError, InputError
from capture_pipeline.features.columns import FEATURE_COLUMNS

from .dataset import FEATURES_SUFFIX, participant_of, read_features
from .train import load_run, write_json_atomic

PREDICTIONS_SUFFIX = ".predictions.parquet"
EXCLUDED = "(excluded)"


@functools.lru_cache(maxsize=2)
def _cached_run(model_dir: str):
    """The model is loaded once per worker process, not once per file."""
    import torch

    torch.set_num_threads(1)  # one task per core: intra-op threads would only compete
    return load_run(model_dir)


def predict_table(model_dir, features: pd.DataFrame, participant: str) -> pd.DataFrame:
    """Per-window predictions of one participant's feature table (see the module docstring)."""
    model, info, std = _cached_run(str(model_dir))
    names = [o["name"] for o in info["outputs"]]
    labelled = [o for o in info["outputs"] if o["kind"] == "labelled"]
    finite = np.isfinite(features[FEATURE_COLUMNS].to_numpy(dtype=np.float64)).all(axis=1)
    valid = finite & ~features["nonwear"].to_numpy(dtype=bool)
    proba = np.full((len(features), len(names)), np.nan, dtype=np.float32)
    if valid.any():
        proba[valid] = model.predict_proba(std.transform(features.loc[valid]))
    cluster = np.where(valid, np.nan_to_num(proba, nan=-1.0).argmax(1), -1)
    name_arr = np.array(names + [EXCLUDED], dtype=object)
    out = {"time": features["time"].to_numpy(), "participant": participant, "valid": valid,
           "cluster": cluster.astype(np.int16), "cluster_name": name_arr[cluster]}
    for k, n in enumerate(names):
        out[f"p_{n}"] = proba[:, k]
    class_p = np.stack([proba[:, o["index"]] for o in labelled], 1) if labelled else np.zeros((len(features), 0))
    for j, o in enumerate(labelled):
        out[f"pc_{o['class']}"] = class_p[:, j]
    out["pc_unlabelled_outputs"] = 1.0 - class_p.sum(1) if labelled else proba.sum(1)
    best = np.array([o["class"] for o in labelled] + ["(unlabelled outputs)"], dtype=object)
    choice = np.concatenate([np.nan_to_num(class_p, nan=-1), np.nan_to_num(out["pc_unlabelled_outputs"],
                                                                          nan=-1)[:, None]], 1).argmax(1)
    out["class"] = np.where(valid, best[choice], EXCLUDED)
    return pd.DataFrame(out)


def time_per_cluster(pred: pd.DataFrame, window_s: float = 30.0) -> pd.DataFrame:
    """Minutes per participant, calendar day and cluster (excluded windows under ``(excluded)``)."""
    day = pd.to_datetime(pred["time"]).dt.strftime("%Y-%m-%d")
    counts = pred.groupby([pred["participant"], day.rename("date"), pred["cluster_name"].rename("cluster")]).size()
    return (counts * window_s / 60.0).rename("minutes").reset_index()


def predict_file(path, model_dir, out_dir) -> dict:
    """One task: predict one feature file, write its predictions, return its summary (errors are returned, so
    that one bad file does not stop the other 99,999)."""
    t0 = time.perf_counter()
    path = Path(path)
    pid = participant_of(path)
    try:
        features = read_features(path)
        pred = predict_table(model_dir, features, pid)
        target = Path(out_dir) / f"{pid}{PREDICTIONS_SUFFIX}"
        tmp = target.with_name(target.name + ".partial")
        pred.to_parquet(tmp, index=False)
        os.replace(tmp, target)
        return {"participant": pid, "file": str(path), "ok": True, "windows": len(pred),
                "valid": int(pred["valid"].sum()), "seconds": time.perf_counter() - t0,
                "time_per_cluster": time_per_cluster(pred).to_dict(orient="list")}
    except CapturePipelineError as exc:
        return {"participant": pid, "file": str(path), "ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported per file with its traceback, the batch goes on
        return {"participant": pid, "file": str(path), "ok": False,
                "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def run_predictions(model_dir, files, out_dir, workers: int = 2, scheduler: str | None = None,
                    progress=print) -> dict:
    """Predict every file with Dask and write the per-day summaries.

    Parameters
    ----------
    model_dir : path
        A trained model directory (``RUN/gmdgm``).
    files : sequence of path
        Feature files.
    out_dir : path
    workers : int
        Local worker processes (one thread each) when no ``scheduler`` is given; 0 runs in this process
        without Dask (small jobs, debugging).
    scheduler : str, optional
        Address of a running Dask scheduler (e.g. ``tcp://head:8786``) to use a cluster.

    Returns
    -------
    dict
        The summary also written to ``predict.json``.
    """
    say = progress or (lambda *_: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_dir = str(Path(model_dir).resolve())
    load_run(model_dir)  # fail early, in the driver, on a bad run folder
    files = [str(Path(f).resolve()) for f in files]
    t0 = time.perf_counter()
    if workers == 0 and scheduler is None:
        results = [predict_file(f, model_dir, str(out_dir)) for f in files]
    else:
        from dask.distributed import Client, LocalCluster, as_completed

        cluster = None
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")  # any free port: never clash
        client = Client(scheduler or cluster)
        try:
            futures = client.map(predict_file, files, model_dir=model_dir, out_dir=str(out_dir), pure=False)
            results = []
            for fut in as_completed(futures):
                r = fut.result()
                results.append(r)
                say(f"{r['participant']}: " + (f"{r['windows']} windows" if r["ok"] else f"FAILED: {r['error']}"))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    tables = [pd.DataFrame(r.pop("time_per_cluster")) for r in results if r["ok"]]
    long = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=["participant", "date", "cluster", "minutes"])
    long = long.sort_values(["participant", "date", "cluster"]).reset_index(drop=True)
    wide = long.pivot_table(index=["participant", "date"], columns="cluster", values="minutes", fill_value=0.0)
    for frame, name, index in ((long, "time_per_cluster.csv", False), (wide, "time_per_cluster_wide.csv", True)):
        tmp = out_dir / (name + ".tmp")
        frame.to_csv(tmp, index=index)
        os.replace(tmp, out_dir / name)
    summary = {"model": model_dir, "files": len(files), "ok": sum(r["ok"] for r in results),
               "failed": [r for r in results if not r["ok"]], "seconds": time.perf_counter() - t0,
               "outputs": ["<participant>" + PREDICTIONS_SUFFIX, "time_per_cluster.csv", "time_per_cluster_wide.csv"]}
    write_json_atomic(summary, out_dir / "predict.json")
    return summary


def feature_inputs(inputs) -> list:
    """Feature files from files and folders (``*.features.parquet`` inside folders)."""
    files = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*" + FEATURES_SUFFIX))
            if not found:
                raise InputError(p, f"no *{FEATURES_SUFFIX} files in this directory")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(p, "no such file or directory")
    return files
