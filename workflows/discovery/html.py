"""The self-contained report.html: inline CSS, figures as base64 PNG, no script and no external resource."""

from __future__ import annotations

import base64
import html as _html

import numpy as np
import pandas as pd

TITLES = {"gmdgm": "GM-DGM", "m2": "M2"}

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:1.5em auto;max-width:1500px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.82em;margin:.4em 0}
td,th{border:1px solid #ddd;padding:.2em .45em;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.models{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:1.5em}
.models>div{min-width:0;overflow-x:auto}
figure{margin:.6em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.8em;color:#555}.note{font-size:.85em;color:#444}
"""


def _e(x) -> str:
    return _html.escape("" if x is None else str(x))


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}f}"
    return _e(v)


def img(png: bytes, alt: str, caption: str = "") -> str:
    """An <img> with the PNG embedded as a data URI (the report has no external files)."""
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure><img class="figure" alt="{_e(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def table(frame: pd.DataFrame, left=(), digits: int = 3) -> str:
    """An HTML table of a DataFrame (columns named in ``left`` are left-aligned)."""
    head = "".join(f'<th class="{"l" if c in left else ""}">{_e(c)}</th>' for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(f'<td class="{"l" if c in left else ""}">{_fmt(v, digits)}</td>'
                        for c, v in zip(frame.columns, row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _metric_rows(metrics: dict) -> pd.DataFrame:
    rows = [
        ("test windows (with a class)", lambda m: f"{m['test_windows']} ({m['test_windows_with_class']})"),
        ("accuracy, many-to-one (transductive, paper)", lambda m: m.get("accuracy_many_to_one_transductive")),
        ("accuracy, many-to-one (mapping from training labels)", lambda m: m.get("accuracy_many_to_one_train_mapping")),
        ("accuracy, Hungarian (transductive)", lambda m: m.get("accuracy_hungarian_transductive")),
        ("Cohen's kappa (many-to-one)", lambda m: m.get("kappa_many_to_one_transductive")),
        ("outputs used", lambda m: m.get("outputs_used")),
        ("Calinski–Harabasz, latent space, clusters", lambda m: m["calinski_harabasz"]["latent_space_clusters"]),
        ("Calinski–Harabasz, feature space, clusters", lambda m: m["calinski_harabasz"]["input_space_clusters"]),
        ("Calinski–Harabasz, latent space, true classes", lambda m: m["calinski_harabasz"]["latent_space_true_classes"]),
    ]
    out = {"metric": [r[0] for r in rows]}
    for name, m in metrics["models"].items():
        out[TITLES[name]] = [f(m) for _, f in rows]
    for name, m in metrics["models"].items():
        for h, d in m["hidden_classes"].items():
            label = (f"hidden class {h}: share of its {d['test_windows']} test windows in clusters where it is "
                     "the majority (> 50 %) activity")
            if label not in out["metric"]:
                out["metric"].append(label)
                for other in metrics["models"]:
                    out[TITLES[other]].append(None)
            out[TITLES[name]][out["metric"].index(label)] = d["share_in_own_clusters"]
    return pd.DataFrame(out)


def _model_section(name: str, a: dict, figs: dict) -> str:
    info = a["info"]
    clusters = a["clusters"]
    shown = clusters.loc[clusters["windows"] > 0, ["cluster", "kind", "windows", "share", "activity",
                                                   "activity_share", "majority_class", "top_codes", "mean_enmo_mg"]]
    parts = [f"<div><h2>{TITLES[name]}</h2>",
             f'<p class="note">{info["n_labelled"]} labelled and {info["n_unlabelled"]} unlabelled training windows; '
             f'{info["epochs_run"]} epochs, {info["steps"]} steps, {info["train_seconds"]:.0f} s. Hidden classes: '
             f'{_e(", ".join(info["hidden_classes"]) or "none")}'
             + (f'; classes without labelled windows: {_e(", ".join(info["absent_classes"]))}'
                if info["absent_classes"] else "") + ".</p>",
             "<h3>Clusters (test windows)</h3>",
             table(shown, left=("cluster", "kind", "activity", "majority_class", "top_codes"), digits=2),
             '<p class="note">activity: the most common class (or CPA code, for windows without a class) of the '
             "cluster's annotated test windows, with its share; majority_class: the most common class among its "
             "windows that have one (the many-to-one mapping).</p>"]
    captions = {
        "composition": "Share of each cluster's test windows per CPA code (or annotation without a code).",
        "confusion": "Rows: true class of labelled test windows; columns: model outputs.",
        "projection": "Means of q(z|x) of test windows projected on their first two principal components.",
        "day": "The test participant with most windows: ENMO, the cluster of each window and the annotated class.",
        "profile": "Hour of day of each cluster's windows (simulated and CAPTURE-24 clocks: see the notes).",
    }
    for key in ("composition", "confusion", "projection", "day", "profile"):
        if key in figs:
            parts.append(img(figs[key], f"{TITLES[name]} {key}", captions[key]))
    comp = a["composition"]
    if not comp.empty:
        top = comp.sort_values(["cluster_windows", "windows"], ascending=False).groupby("cluster", sort=False).head(6)
        top = top[["cluster", "key", "description", "class", "windows", "share_of_cluster", "mean_enmo_mg"]]
        parts += ["<details><summary>What each cluster holds: its 6 largest CPA codes (all of them in "
                  "cluster_composition.csv)</summary>",
                  table(top, left=("cluster", "key", "description", "class"), digits=2), "</details>"]
    if not a["per_class"].empty:
        parts += ["<h3>Per class (test, many-to-one)</h3>",
                  table(a["per_class"], left=("class",), digits=3)]
    parts.append("</div>")
    return "\n".join(parts)


def render_report(analyses: dict, figs: dict, metrics: dict) -> str:
    """The whole report as one HTML string."""
    excl = pd.DataFrame([{"set": k, **v} for k, v in metrics["exclusions"].items()])
    sections = "".join(_model_section(name, a, figs[name]) for name, a in analyses.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Activity discovery report</title>
<style>{CSS}</style></head><body>
<h1>Activity discovery report</h1>
<p class="note">Run: {_e(metrics['run'])}. Models: {_e(', '.join(TITLES[m] for m in analyses))}.
Each model output is a cluster; outputs named after a class are that class's labelled slot, <code>U&lt;k&gt;</code>
are outputs without labels (hidden-class slots and extra outputs) which the model fills with the activities it
discovers. Everything below is computed on the test participants, whose labels training never saw.</p>
<h2>Summary</h2>
{table(_metric_rows(metrics), left=("metric",))}
<h3>Windows used and excluded</h3>
{table(excl, left=("set",))}
<p class="note">{_e(metrics['notes']['calinski_harabasz'])}. CAPTURE-24 timestamps are randomised for anonymity,
so hour-of-day profiles are only meaningful for data with true clocks (such as simulated cohorts).</p>
<div class="models">{sections}</div>
</body></html>
"""
