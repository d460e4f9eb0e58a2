"""The discovery report: what each output cluster holds, how compact it is, how well it classifies test windows.

Everything is computed on the **test participants' valid windows** (never seen in training, labels used only here),
for each model of the run (GM-DGM, M2 when trained too):

* per cluster: size, kind (labelled-class slot, hidden-class slot, extra output), majority class among its
  labelled test windows, its CPA codes (counts, shares, descriptions), top codes, mean ENMO, hour-of-day profile;
* Calinski–Harabasz index of the arg-max clustering in the standardised feature space and in the latent space
  (means of q(z|x)), and of the true classes in the latent space, on the same windows for every model;
* accuracies on labelled test windows: many-to-one with the mapping fitted on the test windows themselves (the
  paper's transductive metric), many-to-one with the mapping fitted on the labelled training windows, Hungarian,
  Cohen's kappa, per-class recall/precision/F1, the confusion matrix;
* for each hidden class: the share of its windows that fall in clusters where it is the majority activity, i.e.
  more than half of the cluster's annotated windows (a window's activity: its class, or its CPA code when it has
  no class).

Files: ``cluster_composition.csv`` (one row per model, cluster and composition key), ``clusters.csv`` (one row per
model and cluster), ``metrics.json`` and the self-contained ``report.html``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from capture_pipeline.errors import InputError
from capture_pipeline.features.columns import FEATURE_COLUMNS

from . import figures
from .train import SPLIT_FILE, WINDOWS_FILE, load_run, model_dirs, training_arrays, write_json_atomic

#: Windows used for the Calinski–Harabasz indices and the projection (a fixed random subset beyond this).
MAX_CH_WINDOWS = 10000
MAX_SCATTER = 3000


def composition_key(windows: pd.DataFrame) -> tuple:
    """A composition key per window and a description per key.

    The key is the window's CPA code when its most common annotation has one, else that annotation string
    (CAPTURE-24 has annotations without a code, e.g. ``walking;MET 4.0``), else ``(unannotated)``.
    """
    from data_dictionary.annotations import parse_annotation

    code = windows["cpa_code"]
    ann = windows["annotation"].astype(object)
    key = np.where(code.notna(), code.astype("Int64").astype(str), np.where(ann.notna(), ann, "(unannotated)"))
    desc = {}
    for k, a in zip(key, ann):
        if k in desc or a is None or (isinstance(a, float) and np.isnan(a)) or a is pd.NA:
            continue
        p = parse_annotation(a)
        desc[k] = p.description if p.cpa_code is not None and p.description else a
    desc.setdefault("(unannotated)", "no annotation")
    return key.astype(str), desc


def _describe(activity, desc: dict):
    """``"11580 office/computer work general"`` for a CPA code key; class names and annotations as they are."""
    if activity is None or not activity.isdigit():
        return activity
    return f"{activity} {desc.get(activity, '')}".strip()


def _kappa(true: np.ndarray, pred: np.ndarray) -> float:
    """Cohen's kappa, NaN (without sklearn's warning) when fewer than two classes occur."""
    from sklearn.metrics import cohen_kappa_score

    if np.unique(np.r_[true, pred]).size < 2:
        return float("nan")
    return float(cohen_kappa_score(true, pred))


def _enmo_mg(windows: pd.DataFrame) -> np.ndarray:
    return windows["enmoTrunc"].to_numpy(dtype=float) * 1000.0


def _subset(n: int, limit: int, seed: int = 0) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def per_class_scores(true: np.ndarray, pred: np.ndarray, classes) -> pd.DataFrame:
    """Recall, precision and F1 of each class from class predictions (-1 = no class predicted)."""
    rows = []
    for i, c in enumerate(classes):
        tp = int(np.sum((true == i) & (pred == i)))
        n_true, n_pred = int(np.sum(true == i)), int(np.sum(pred == i))
        rec = tp / n_true if n_true else np.nan
        prec = tp / n_pred if n_pred else np.nan
        f1 = 2 * rec * prec / (rec + prec) if n_true and n_pred and (rec + prec) > 0 else (0.0 if n_true else np.nan)
        rows.append({"class": c, "test_windows": n_true, "predicted": n_pred, "recall": rec, "precision": prec,
                     "f1": f1})
    return pd.DataFrame(rows)


def analyse_model(model_dir, windows: pd.DataFrame, split, ch_rows: np.ndarray | None = None) -> dict:
    """All numbers and tables of one model on the test participants (see the module docstring)."""
    from sklearn.decomposition import PCA
    from models import evaluation as ev

    model, info, std = load_run(model_dir)
    classes = info["classes"]
    names = [o["name"] for o in info["outputs"]]
    n_y = len(names)
    role = windows["participant"].map(split.role_of())
    test = windows.loc[(role == "test").to_numpy() & windows["valid"].to_numpy()].reset_index(drop=True)
    if test.empty:
        raise InputError(model_dir, "the split's test participants have no valid windows to evaluate")
    x = std.transform(test)
    proba = model.predict_proba(x)
    clusters = proba.argmax(1)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in test["label"].astype(object)], np.int64)
    has = y >= 0

    # Mapping fitted on the labelled training windows (hidden classes can never be reached this way).
    data, y_train = training_arrays(windows, split, classes, set(info["hidden_classes"]) | set(info["absent_classes"]),
                                    info["config"]["unmapped"])
    train_clusters = model.predict(std.transform(pd.DataFrame(data.x_labelled, columns=FEATURE_COLUMNS)))
    metrics = {"test_windows": int(len(test)), "test_windows_with_class": int(has.sum()),
               "test_participants": int(test["participant"].nunique())}
    if has.any():
        res = ev.evaluate_clusters(clusters[has], y[has], train_clusters, y_train, n_clusters=n_y)
        trans_map = np.asarray(res["mapping_transductive"])
        pred = ev.apply_mapping(clusters[has], trans_map)
        metrics.update({
            "accuracy_many_to_one_transductive": res["many_to_one_transductive"],
            "accuracy_hungarian_transductive": res["hungarian_transductive"],
            "accuracy_many_to_one_train_mapping": res["many_to_one"],
            "accuracy_hungarian_train_mapping": res["hungarian"],
            "kappa_many_to_one_transductive": _kappa(y[has], pred),
            "outputs_used": int(np.unique(clusters).size),
        })
        scores = per_class_scores(y[has], pred, classes)
        confusion = pd.DataFrame(ev.confusion_matrix(y[has], clusters[has], len(classes), n_y), index=classes,
                                 columns=names)
        confusion = confusion.loc[confusion.sum(axis=1) > 0, confusion.sum(axis=0) > 0]
    else:  # nothing labelled among the test windows: composition and CH only
        trans_map = np.full(n_y, -1)
        scores, confusion = pd.DataFrame(), pd.DataFrame()
    metrics["per_class"] = scores.to_dict(orient="records")

    # Hidden classes. A cluster's *activity* is the most common activity of its annotated test windows, where a
    # window's activity is its class if it has one, else its CPA code (or code-less annotation): a cluster of
    # desk work with a few cycling windows is a desk-work cluster, not a cycling one. The looser "labelled
    # majority" (majority among windows with a class only, i.e. the transductive many-to-one mapping) is kept too.
    key, desc = composition_key(test)
    activity = np.where(has, test["label"].astype(object).to_numpy(), key).astype(str)
    annotated = key != "(unannotated)"
    cluster_activity = {}
    for k in range(n_y):
        sel = (clusters == k) & annotated
        if sel.any():
            acts, counts = np.unique(activity[sel], return_counts=True)
            cluster_activity[k] = (str(acts[counts.argmax()]), float(counts.max() / sel.sum()))
    hidden = {}
    for h in info["hidden_classes"]:
        i = index[h]
        sel = y == i
        # "Its own cluster": that activity holds more than half of the cluster's annotated windows.
        own = [k for k in range(n_y) if cluster_activity.get(k, ("", 0.0))[0] == h and cluster_activity[k][1] > 0.5]
        own_labelled = [k for k in range(n_y) if trans_map[k] == i]
        hidden[h] = {
            "test_windows": int(sel.sum()),
            "share_in_own_clusters": float(np.isin(clusters[sel], own).mean()) if sel.any() else None,
            "own_clusters": [names[k] for k in own],
            "share_in_labelled_majority_clusters":
                float(np.isin(clusters[sel], own_labelled).mean()) if sel.any() else None,
            "labelled_majority_clusters": [names[k] for k in own_labelled],
            "clusters": {names[k]: int(n) for k, n in zip(*np.unique(clusters[sel], return_counts=True))},
        }
    metrics["hidden_classes"] = hidden

    # Calinski–Harabasz on a fixed subset, identical for every model of the run (same rows of `test`).
    rows = _subset(len(test), MAX_CH_WINDOWS) if ch_rows is None else ch_rows
    latent = model.latent_mean(x[rows])
    metrics["calinski_harabasz"] = {
        "windows": int(len(rows)),
        "input_space_clusters": ev.calinski_harabasz(x[rows], clusters[rows]),
        "latent_space_clusters": ev.calinski_harabasz(latent, clusters[rows]),
        "latent_space_true_classes": ev.calinski_harabasz(latent[has[rows]], y[rows][has[rows]]),
        "input_space_true_classes": ev.calinski_harabasz(x[rows][has[rows]], y[rows][has[rows]]),
    }

    # Composition of every cluster.
    enmo = _enmo_mg(test)
    hours = pd.to_datetime(test["time"]).dt.hour.to_numpy()
    comp_rows, cluster_rows, profile = [], [], {}
    for k in range(n_y):
        sel = clusters == k
        n = int(sel.sum())
        maj = classes[trans_map[k]] if trans_map[k] >= 0 else None
        keys, counts = np.unique(key[sel], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        top = [f"{keys[j]} ({counts[j] / n:.0%})" for j in order[:3]] if n else []
        out = info["outputs"][k]
        cluster_rows.append({
            "cluster": names[k], "index": k, "kind": out["kind"], "windows": n, "share": n / len(test),
            "class_of_slot": out["class"], "majority_class": maj,
            "activity": _describe(cluster_activity.get(k, (None,))[0], desc),
            "activity_share": cluster_activity.get(k, (None, np.nan))[1],
            "top_codes": "; ".join(top),
            "mean_enmo_mg": float(enmo[sel].mean()) if n else np.nan, "prior": out["prior"],
        })
        for j in order:
            lab = test.loc[sel, "label"].astype(object).to_numpy()[key[sel] == keys[j]]
            lab = pd.Series(lab).dropna()
            comp_rows.append({
                "cluster": names[k], "cluster_windows": n, "majority_class": maj, "key": keys[j],
                "description": desc.get(keys[j], ""), "class": lab.mode().iloc[0] if len(lab) else None,
                "windows": int(counts[j]), "share_of_cluster": counts[j] / n,
                "mean_enmo_mg": float(enmo[sel][key[sel] == keys[j]].mean()),
            })
        if n:
            profile[names[k]] = np.bincount(hours[sel], minlength=24) / n
    clusters_table = pd.DataFrame(cluster_rows)
    composition = pd.DataFrame(comp_rows)

    # Data for the figures.
    top_keys = composition.groupby("key")["windows"].sum().sort_values(ascending=False).index[:16]
    shares = composition.pivot_table(index="cluster", columns="key", values="share_of_cluster", fill_value=0.0)
    used = [n for n in names if n in shares.index]
    shares = shares.reindex(index=used, columns=top_keys, fill_value=0.0)
    shares.columns = [f"{c} {desc.get(c, '')}"[:40] if c != desc.get(c) else c[:40] for c in shares.columns]
    scatter = rows[_subset(len(rows), MAX_SCATTER, seed=1)]
    pos = {int(r): i for i, r in enumerate(rows)}
    pts = latent[[pos[int(r)] for r in scatter]]
    pts2 = PCA(n_components=2, random_state=0).fit_transform(pts) if len(pts) >= 3 else np.zeros((len(pts), 2))
    counts_per_pid = test.groupby("participant").size()
    pid = str(counts_per_pid.idxmax())
    day = (test["participant"] == pid).to_numpy()
    return {
        "info": info, "names": names, "metrics": metrics, "clusters": clusters_table, "composition": composition,
        "per_class": scores, "confusion": confusion, "shares": shares, "profile": pd.DataFrame(profile).T,
        "projection": (pts2, clusters[scatter]), "day": (pid, test.loc[day, "time"].to_numpy(), enmo[day],
                                                          clusters[day], test.loc[day, "label"].to_numpy()),
        "test_rows": len(test),
    }


def model_figures(a: dict, title: str) -> dict:
    """PNG bytes of every figure of one analysed model."""
    figs = {}
    if not a["shares"].empty:
        figs["composition"] = figures.composition_heatmap(a["shares"], f"{title}: cluster composition (test)")
    if not a["confusion"].empty:
        figs["confusion"] = figures.confusion_figure(a["confusion"], f"{title}: true class x output (test)")
    pts, cl = a["projection"]
    figs["projection"] = figures.latent_projection(pts, cl, a["names"], f"{title}: latent means, 2-D PCA")
    pid, t, enmo, cl, lab = a["day"]
    figs["day"] = figures.participant_day(t, enmo, cl, a["names"], lab, f"{title}: participant {pid}")
    if not a["profile"].empty:
        figs["profile"] = figures.hour_profile(a["profile"], f"{title}: time-of-day profile")
    return figs


def write_report(run_dir, out_dir, progress=print) -> Path:
    """Analyse every model of ``run_dir`` and write the report files to ``out_dir``; returns report.html's path."""
    from data_dictionary.splits import read_split

    from .html import render_report

    say = progress or (lambda *_: None)
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    t0 = time.perf_counter()
    dirs = model_dirs(run_dir)
    table_path = run_dir / WINDOWS_FILE
    if not table_path.is_file():
        raise InputError(run_dir, f"no {WINDOWS_FILE}: not a run folder written by 'capture-pipeline train'")
    windows = pd.read_parquet(table_path)
    split = read_split(run_dir / SPLIT_FILE)
    role = windows["participant"].map(split.role_of())
    n_test = int(((role == "test") & windows["valid"]).sum())
    ch_rows = _subset(n_test, MAX_CH_WINDOWS)
    out_dir.mkdir(parents=True, exist_ok=True)
    analyses, figs = {}, {}
    for name in ("gmdgm", "m2"):
        if name in dirs:
            say(f"analysing {name}")
            analyses[name] = analyse_model(dirs[name], windows, split, ch_rows)
            figs[name] = model_figures(analyses[name], {"gmdgm": "GM-DGM", "m2": "M2"}[name])
    composition = pd.concat([a["composition"].assign(model=m) for m, a in analyses.items()], ignore_index=True)
    composition = composition[["model"] + [c for c in composition.columns if c != "model"]]
    clusters = pd.concat([a["clusters"].assign(model=m) for m, a in analyses.items()], ignore_index=True)
    clusters = clusters[["model"] + [c for c in clusters.columns if c != "model"]]
    exclusions = next(iter(analyses.values()))["info"]["exclusions"]
    metrics = {
        "run": str(run_dir), "models": {m: a["metrics"] for m, a in analyses.items()},
        "exclusions": exclusions,
        "training": {m: {**{k: a["info"][k] for k in ("n_labelled", "n_unlabelled", "labelled_counts",
                                                      "hidden_classes", "absent_classes", "epochs_run", "steps",
                                                      "train_seconds")},
                         "split_moves": a["info"].get("splits", []),
                         "posterior_weight": a["info"]["config"].get("posterior_weight", 0.0)}
                     for m, a in analyses.items()},
        "notes": {
            "evaluation_set": "valid windows (worn, finite features) of the split's test participants",
            "calinski_harabasz": "sklearn calinski_harabasz_score on the same windows for every model; clusters = "
                                 "arg-max of q(y|x); input space = standardised features; latent space = E[z|x]",
            "many_to_one_transductive": "each output mapped to the majority true class of its labelled test windows "
                                        "(the seed paper's metric)",
            "train_mapping": "each output mapped to the majority class of its labelled training windows",
        },
    }
    _write_csv(composition, out_dir / "cluster_composition.csv")
    _write_csv(clusters, out_dir / "clusters.csv")
    write_json_atomic(metrics, out_dir / "metrics.json")
    html = render_report(analyses, figs, metrics)
    tmp = out_dir / "report.html.tmp"
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out_dir / "report.html")
    say(f"report written in {time.perf_counter() - t0:.0f} s: {out_dir / 'report.html'}")
    return out_dir / "report.html"


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
