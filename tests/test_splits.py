"""Participant splits, the split CLI, the class-balance report and leak-free training datasets."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import data_dictionary as dd
from capture_pipeline.errors import InputError
from workflows.cli import main

SHARED_DICT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "capture24" / \
    "annotation-label-dictionary.csv"
PAPER_IDS = [f"P{i:03d}" for i in range(1, 133)]


def sizes(split):
    return [len(split.labelled), len(split.unlabelled), len(split.test), len(split.unused)]


def assert_partition(split, ids):
    sets = [set(split.labelled), set(split.unlabelled), set(split.test), set(split.unused)]
    assert sum(len(s) for s in sets) == len(ids)
    assert set().union(*sets) == set(ids)


# --- make_split ---------------------------------------------------------------------------------------------


def test_default_is_the_papers_20_92_20_on_132_participants():
    split = dd.make_split(PAPER_IDS)
    assert sizes(split) == [20, 92, 20, 0]
    assert_partition(split, PAPER_IDS)
    assert split.seed == 0
    assert list(split.labelled) == sorted(split.labelled)


def test_paper_sizes_on_the_151_public_participants_leave_19_unused():
    ids = [f"P{i:03d}" for i in range(1, 152)]
    split = dd.make_split(ids, seed=3)
    assert sizes(split) == [20, 92, 20, 19]
    assert_partition(split, ids)
    assert sizes(dd.make_split(ids, **dd.PRESETS["all151"])) == [20, 111, 20, 0]


def test_split_is_reproducible_and_independent_of_input_order():
    a = dd.make_split(PAPER_IDS, seed=42)
    b = dd.make_split(list(reversed(PAPER_IDS)), seed=42)
    assert a == b
    c = dd.make_split(PAPER_IDS, seed=43)
    assert c.labelled != a.labelled
    # Different seeds draw different people; over 50 seeds every participant is labelled at least once.
    ever = set()
    for seed in range(50):
        ever |= set(dd.make_split(PAPER_IDS, seed=seed).labelled)
    assert ever == set(PAPER_IDS)


def test_fractions_and_rest():
    assert sizes(dd.make_split(PAPER_IDS, 0.15, 0.7, 0.15)) == [20, 92, 20, 0]
    assert sizes(dd.make_split(PAPER_IDS, 0.5, 0.25, 0.25)) == [66, 33, 33, 0]
    # 3 x 13.2: together round(39.6) = 40, the first set takes the extra one (largest remainder, ties in order).
    assert sizes(dd.make_split(PAPER_IDS, 0.1, 0.1, 0.1)) == [14, 13, 13, 92]
    assert sizes(dd.make_split(PAPER_IDS, 10, "rest", 0.1)) == [10, 109, 13, 0]
    assert sizes(dd.make_split(PAPER_IDS, 20.0, 92.0, 20.0)) == [20, 92, 20, 0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(labelled=20, unlabelled=92, test=21), "132 participants, but the split asks for 20 labelled + 92 "
                                                   "unlabelled + 21 test = 133"),
        (dict(labelled=0.6, unlabelled=0.6, test=0), "fractions add up to 1.2"),
        (dict(labelled="rest", unlabelled="rest", test=1), "only one set can take the rest"),
        (dict(labelled=-1, unlabelled=1, test=1), "cannot be negative"),
        (dict(labelled=2.5, unlabelled=1, test=1), "neither a whole count nor a fraction"),
    ],
)
def test_impossible_sizes_are_clear_errors(kwargs, message):
    with pytest.raises(InputError) as err:
        dd.make_split(PAPER_IDS, source="ids.txt", **kwargs)
    assert "ids.txt" in str(err.value)
    assert message in str(err.value)


def test_benchmark_split():
    ids = [f"P{i:03d}" for i in range(151, 0, -1)]
    split = dd.benchmark_split(ids)
    assert split.labelled == tuple(f"P{i:03d}" for i in range(1, 102))
    assert split.test == tuple(f"P{i:03d}" for i in range(102, 152))
    assert split.unlabelled == () and split.seed is None
    with pytest.raises(InputError, match="'P152'"):
        dd.benchmark_split(ids + ["P152"])
    with pytest.raises(InputError, match="both"):
        dd.benchmark_split(ids[:50])


def test_duplicate_ids_are_rejected():
    with pytest.raises(InputError, match=r"more than once: \['P001'\]"):
        dd.make_split(PAPER_IDS + ["P001"])


def test_write_and_read_split(tmp_path):
    split = dd.make_split(PAPER_IDS, seed=9)
    out = tmp_path / "sub" / "split.json"
    dd.write_split(split, out)
    data = json.loads(out.read_text())
    assert data["seed"] == 9
    assert data["labelled"] == list(split.labelled)
    assert data["counts"] == {"labelled": 20, "unlabelled": 92, "test": 20, "unused": 0}
    assert dd.read_split(out) == split
    assert os.listdir(out.parent) == ["split.json"]  # no temporary file left behind


def test_read_split_rejects_overlapping_sets(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"labelled": ["P1", "P2"], "unlabelled": ["P3"], "test": ["P2"], "seed": 1}))
    with pytest.raises(InputError, match="'P2' is in both 'labelled' and 'test'"):
        dd.read_split(f)
    f.write_text(json.dumps({"labelled": ["P1"], "test": []}))
    with pytest.raises(InputError, match="'unlabelled' must be a list"):
        dd.read_split(f)
    f.write_text("{not json")
    with pytest.raises(InputError, match="not a JSON split file"):
        dd.read_split(f)


def test_participants_from_folder_and_lists(tmp_path):
    folder = tmp_path / "capture24"
    folder.mkdir()
    for i in range(1, 6):
        (folder / f"P{i:03d}.csv.gz").write_bytes(b"")
    for side in ("metadata.csv", "annotation-label-dictionary.csv", "README.md", ".hidden.csv", "notes.txt"):
        (folder / side).write_text("x")
    (folder / "sub.csv").mkdir()
    assert dd.participants_from(folder) == ["P001", "P002", "P003", "P004", "P005"]

    listing = tmp_path / "ids.txt"
    listing.write_text("# cohort\nP010\n\n  P011  \n")
    assert dd.participants_from(listing) == ["P010", "P011"]
    meta = tmp_path / "metadata.csv"
    meta.write_text("pid,age,sex\nP001,18-29,F\nP002,53+,M\n")
    assert dd.participants_from(meta) == ["P001", "P002"]
    meta.write_text("id,age\nP001,18-29\n")
    with pytest.raises(InputError, match="'participant' or 'pid' column"):
        dd.participants_from(meta)
    listing.write_text("P1\nP1\n")
    with pytest.raises(InputError, match="more than once"):
        dd.participants_from(listing)
    with pytest.raises(InputError, match="no recording files"):
        dd.participants_from(tmp_path / "capture24" / "sub.csv")


# --- the split CLI ------------------------------------------------------------------------------------------


def test_split_cli_on_a_folder(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    for pid in PAPER_IDS:
        (folder / f"{pid}.csv.gz").write_bytes(b"")
    (folder / "metadata.csv").write_text("pid\n")
    out = tmp_path / "split.json"
    assert main(["split", "--participants", str(folder), "--seed", "5", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["seed"] == 5
    assert [len(data[r]) for r in ("labelled", "unlabelled", "test")] == [20, 92, 20]
    assert sorted(data["labelled"] + data["unlabelled"] + data["test"]) == PAPER_IDS
    assert dd.read_split(out) == dd.make_split(PAPER_IDS, seed=5)
    assert "20 labelled, 92 unlabelled, 20 test, 0 unused" in capsys.readouterr().out

    # An existing split is not replaced without --overwrite.
    before = out.read_text()
    assert main(["split", "--participants", str(folder), "--seed", "6", "--out", str(out)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert out.read_text() == before
    assert main(["split", "--participants", str(folder), "--seed", "6", "--out", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["seed"] == 6


def test_split_cli_benchmark_preset(tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(f"P{i:03d}" for i in range(1, 152)))
    out = tmp_path / "bench.json"
    assert main(["split", "--participants", str(ids), "--preset", "benchmark", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["counts"] == {"labelled": 101, "unlabelled": 0, "test": 50, "unused": 0}
    assert data["seed"] is None and data["test"][0] == "P102"
    assert "fixed split" in capsys.readouterr().out
    assert main(["split", "--participants", str(ids), "--preset", "benchmark", "--test", "10",
                 "--out", str(tmp_path / "b2.json")]) == 2
    assert "fixed split; --test cannot change it" in capsys.readouterr().err


def test_split_cli_sizes_and_errors(tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(f"S{i}" for i in range(40)))
    out = tmp_path / "s.json"
    assert main(["split", "--participants", str(ids), "--labelled", "0.25", "--unlabelled", "rest",
                 "--test", "5", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["counts"] == {"labelled": 10, "unlabelled": 25, "test": 5, "unused": 0}
    capsys.readouterr()
    # Too few participants for the paper's default: a clear error, no file written.
    out2 = tmp_path / "s2.json"
    assert main(["split", "--participants", str(ids), "--out", str(out2)]) == 2
    err = capsys.readouterr().err
    assert f"{ids}: 40 participants, but the split asks for 20 labelled + 92 unlabelled + 20 test = 132" in err
    assert not out2.exists()
    with pytest.raises(SystemExit):
        main(["split", "--participants", str(ids), "--labelled", "lots", "--out", str(out2)])


# --- a simulated cohort -------------------------------------------------------------------------------------


def simulated_cohort(n_participants=30, n_windows=40, fs=1, seed=0):
    """Window table of synthetic participants whose annotations are real dictionary strings.

    Each participant has runs of annotations (including unannotated stretches and strings without a mapped
    code); per-sample annotations are turned into window labels with `window_labels`, and three features are
    drawn around a class-dependent mean.
    """
    rng = np.random.default_rng(seed)
    strings = pd.read_csv(SHARED_DICT, dtype=str, keep_default_na=False)["annotation"].tolist()
    mapped = [s for s in strings if dd.default_mapping().classify(s)[0] is not None]
    frames = []
    for p in range(n_participants):
        n = n_windows * 30 * fs
        # Each participant favours a few activities, including unmapped ones and gaps.
        palette = list(rng.choice(mapped, 3)) + list(rng.choice(strings, 2)) + [None]
        runs = rng.integers(10, 120, size=n)
        picks = rng.integers(0, len(palette), size=n)
        ann = np.array([palette[i] for i in np.repeat(picks, runs)[:n]], dtype=object)
        t0 = np.datetime64("2016-11-13T00:00:00", "ns").view(np.int64) + p * 86_400 * 10**9
        t = t0 + np.arange(n, dtype=np.int64) * (10**9 // fs)
        starts = t0 + np.arange(n_windows, dtype=np.int64) * 30 * 10**9
        w = dd.window_labels(t, ann, starts)
        code = w["cpa_code"].fillna(0).to_numpy(dtype=float)
        w.insert(0, "participant", f"P{p + 1:03d}")
        for k in range(3):
            w[f"f{k}"] = np.log1p(code) * (k + 1) + rng.normal(size=len(w))
        frames.append(w)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def cohort():
    return simulated_cohort()


@pytest.fixture(scope="module")
def cohort_split(cohort):
    return dd.make_split(cohort["participant"].unique(), labelled=6, unlabelled=18, test=6, seed=1)


def test_simulated_cohort_split_is_disjoint_and_complete(cohort, cohort_split):
    ids = sorted(cohort["participant"].unique())
    assert len(ids) == 30
    assert_partition(cohort_split, ids)
    assert sizes(cohort_split) == [6, 18, 6, 0]
    # The cohort has labelled and unlabelled windows in every set.
    roles = cohort["participant"].map(cohort_split.role_of())
    for role in dd.ROLES:
        labels = cohort.loc[roles == role, "label"]
        assert labels.notna().sum() > 0 and labels.isna().sum() > 0


def test_training_dataset_contents(cohort, cohort_split):
    data = dd.training_dataset(cohort, cohort_split)
    role = cohort["participant"].map(cohort_split.role_of())
    lab = cohort["label"].notna()
    assert data.feature_columns == ("f0", "f1", "f2")
    assert data.x_labelled.dtype == np.float32
    # Labelled rows: exactly the labelled participants' windows that have a class.
    expected_l = cohort[(role == "labelled") & lab]
    assert len(data.x_labelled) == len(expected_l)
    np.testing.assert_array_equal(data.x_labelled, expected_l[["f0", "f1", "f2"]].to_numpy(np.float32))
    assert [data.classes[i] for i in data.y_labelled] == expected_l["label"].tolist()
    assert set(data.participant_labelled) == set(cohort_split.labelled)
    # Unlabelled pool: every window of unlabelled participants plus labelled participants' unmapped windows.
    expected_u = cohort[(role == "unlabelled") | ((role == "labelled") & ~lab)]
    assert len(data.x_unlabelled) == len(expected_u)
    np.testing.assert_array_equal(data.x_unlabelled, expected_u[["f0", "f1", "f2"]].to_numpy(np.float32))
    # No test participant anywhere.
    assert not set(cohort_split.test) & (set(data.participant_labelled) | set(data.participant_unlabelled))
    # Dropping unmapped windows of labelled participants instead.
    dropped = dd.training_dataset(cohort, cohort_split, unmapped="drop")
    assert len(dropped.x_unlabelled) == int((role == "unlabelled").sum())


def scramble_hidden_labels(table, split, seed):
    """The table with every label-related value of unlabelled and test participants replaced."""
    rng = np.random.default_rng(seed)
    out = table.copy()
    hidden = out["participant"].isin(list(split.unlabelled) + list(split.test)).to_numpy()
    n = int(hidden.sum())
    fake = np.array(["LEAKED-A", "LEAKED-B", None], dtype=object)[rng.integers(0, 3, n)]
    out.loc[hidden, "label"] = fake
    out.loc[hidden, "reason"] = np.where(pd.isna(fake), "mixed", "labelled")
    out.loc[hidden, "annotation"] = "leak;99999 planted;MET 9.9"
    out.loc[hidden, "cpa_code"] = 99999
    out.loc[hidden, "label_fraction"] = rng.random(n)
    return out


def assert_no_label_leak(builder, table, split):
    """Fails if what `builder` returns depends on labels of unlabelled or test participants."""
    reference = builder(table, split)
    for seed in range(3):
        other = builder(scramble_hidden_labels(table, split, seed), split)
        assert other.classes == reference.classes
        for name in ("x_labelled", "y_labelled", "x_unlabelled", "participant_labelled", "participant_unlabelled"):
            np.testing.assert_array_equal(getattr(other, name), getattr(reference, name), err_msg=name)
        assert not {"LEAKED-A", "LEAKED-B"} & set(other.classes)


def test_labels_of_unlabelled_and_test_participants_do_not_reach_training(cohort, cohort_split):
    assert_no_label_leak(dd.training_dataset, cohort, cohort_split)
    for unmapped in ("unlabelled", "drop"):
        assert_no_label_leak(lambda t, s: dd.training_dataset(t, s, unmapped=unmapped), cohort, cohort_split)


def test_the_leak_check_catches_a_leaking_builder(cohort, cohort_split):
    # A builder that takes labels from the unlabelled participants too: the check above must fail on it.
    def leaky(table, split):
        merged = dd.Split(labelled=split.labelled + split.unlabelled, unlabelled=(), test=split.test)
        return dd.training_dataset(table, merged)

    with pytest.raises(AssertionError):
        assert_no_label_leak(leaky, cohort, cohort_split)


def test_label_columns_are_never_features(cohort, cohort_split):
    with pytest.raises(ValueError, match="label or id columns"):
        dd.training_dataset(cohort, cohort_split, feature_columns=["f0", "cpa_code"])
    # A label column of another name, even numeric, is never a default feature.
    coded = cohort.assign(y=cohort["label"].factorize()[0]).drop(columns="label")
    assert dd.training_dataset(coded, cohort_split, label_column="y").feature_columns == ("f0", "f1", "f2")
    with pytest.raises(ValueError, match=r"label or id columns \['y'\]"):
        dd.training_dataset(coded, cohort_split, feature_columns=["f0", "y"], label_column="y")
    # QC counts of the feature tables are not features either.
    with_qc = cohort.assign(samples=3000, dataErrors=0)
    assert dd.training_dataset(with_qc, cohort_split).feature_columns == ("f0", "f1", "f2")
    with pytest.raises(InputError, match="not numeric"):
        dd.training_dataset(cohort.assign(note="x"), cohort_split)
    stranger = cohort.copy()
    stranger.loc[0, "participant"] = "P999"
    with pytest.raises(InputError, match=r"\['P999'\].*in no set"):
        dd.training_dataset(stranger, cohort_split)


def test_windows_with_nonfinite_features(cohort, cohort_split):
    # Non-wear windows have NaN features and a boolean "nonwear" flag (capture_pipeline.nonwear.apply_nonwear).
    table = cohort.copy()
    rng = np.random.default_rng(5)
    bad = rng.random(len(table)) < 0.1
    table.loc[bad, "f1"] = np.nan
    table.loc[np.flatnonzero(~bad)[:3], "f2"] = np.inf
    table["nonwear"] = bad
    bad |= ~np.isfinite(table["f2"].to_numpy())
    role = table["participant"].map(cohort_split.role_of()).to_numpy()
    lab = table["label"].notna().to_numpy()

    data = dd.training_dataset(table, cohort_split)
    assert data.feature_columns == ("f0", "f1", "f2")  # the flag is not a feature
    assert data.n_nonfinite == int((bad & (role != "test")).sum())
    assert np.isfinite(data.x_labelled).all() and np.isfinite(data.x_unlabelled).all()
    assert len(data.x_labelled) == int(((role == "labelled") & lab & ~bad).sum())
    assert len(data.x_unlabelled) == int((((role == "unlabelled") | ((role == "labelled") & ~lab)) & ~bad).sum())
    kept = dd.training_dataset(table, cohort_split, nonfinite="keep")
    assert len(kept.x_labelled) == int(((role == "labelled") & lab).sum())
    with pytest.raises(InputError, match="windows have NaN or infinite features"):
        dd.training_dataset(table, cohort_split, nonfinite="error")

    ev = dd.evaluation_dataset(table, cohort_split, data.classes)
    assert ev.n_nonfinite == int((bad & (role == "test")).sum())
    assert len(ev.x) == int(((role == "test") & ~bad).sum()) == len(ev.labels) == len(ev.y)
    assert np.isfinite(ev.x).all()


def test_withheld_classes_join_the_unlabelled_pool(cohort, cohort_split):
    full = dd.training_dataset(cohort, cohort_split)
    keep = full.classes[:2]
    part = dd.training_dataset(cohort, cohort_split, classes=keep)
    assert part.classes == keep
    withheld = int(np.isin(full.y_labelled, [2, 3, 4, 5, 6, 7]).sum())
    assert withheld > 0
    assert len(part.x_labelled) == len(full.x_labelled) - withheld
    assert len(part.x_unlabelled) == len(full.x_unlabelled) + withheld


def test_evaluation_dataset_has_the_test_labels(cohort, cohort_split):
    train = dd.training_dataset(cohort, cohort_split)
    ev = dd.evaluation_dataset(cohort, cohort_split, train.classes)
    test_rows = cohort[cohort["participant"].isin(cohort_split.test)]
    assert set(ev.participant) == set(cohort_split.test)
    assert len(ev.x) == len(test_rows)
    assert [None if pd.isna(x) else x for x in test_rows["label"]] == list(ev.labels)
    known = np.array([lab in train.classes for lab in ev.labels])
    assert (ev.y[~known] == -1).all()
    assert [train.classes[i] for i in ev.y[known]] == list(ev.labels[known])
    assert list(ev.cpa_code) == [None if pd.isna(c) else c for c in test_rows["cpa_code"]]


# --- class balance ------------------------------------------------------------------------------------------


def test_class_balance_small_example():
    table = pd.DataFrame({
        "participant": ["A", "A", "A", "B", "B", "C", "C", "D"],
        "label": ["Sleep", "Sleep", None, "Sleep", "Walking", None, "Walking", "Sleep"],
        "reason": ["labelled", "labelled", "no_cpa_code", "labelled", "labelled", "unannotated", "labelled",
                   "labelled"],
    })
    split = dd.Split(labelled=("A",), unlabelled=("B", "D"), test=("C",))
    report = dd.class_balance(table, split)
    assert list(report.index) == ["Sleep", "Walking", "(no class: no_cpa_code)", "(no class: unannotated)",
                                  "(total)"]
    assert report.loc["Sleep"].to_dict() == {
        "labelled_windows": 2, "labelled_participants": 1, "unlabelled_windows": 2,
        "unlabelled_participants": 2, "test_windows": 0, "test_participants": 0}
    assert report.loc["Walking", "test_windows"] == 1
    assert report.loc["(total)"].tolist() == [3, 1, 3, 2, 2, 1]


def test_class_balance_on_the_cohort_matches_direct_counts(cohort, cohort_split):
    report = dd.class_balance(cohort, cohort_split)
    role = cohort["participant"].map(cohort_split.role_of())
    for cls in cohort["label"].dropna().unique():
        for r in dd.ROLES:
            rows = cohort[(cohort["label"] == cls) & (role == r)]
            assert report.loc[cls, f"{r}_windows"] == len(rows)
            assert report.loc[cls, f"{r}_participants"] == rows["participant"].nunique()
    body = report.drop(index="(total)")
    assert (body.filter(like="_windows").sum() == report.loc["(total)"].filter(like="_windows")).all()
    assert report.loc["(total)", "test_participants"] == 6


def test_split_cli_reports_class_balance(tmp_path, cohort, capsys):
    table = tmp_path / "windows.csv"
    cohort.to_csv(table, index=False)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sorted(cohort["participant"].unique())))
    out = tmp_path / "split.json"
    balance = tmp_path / "balance.csv"
    assert main(["split", "--participants", str(ids), "--labelled", "6", "--unlabelled", "rest", "--test", "6",
                 "--seed", "1", "--out", str(out), "--windows", str(table), "--balance-out", str(balance)]) == 0
    written = pd.read_csv(balance, index_col="class")
    expected = dd.class_balance(cohort, dd.read_split(out))
    pd.testing.assert_frame_equal(written, expected, check_names=False)


def test_participant_side_files_are_not_participants(tmp_path):
    from data_dictionary.splits import participants_from

    for name in ("P001.csv.gz", "P001.annotations.csv", "P002.cwa", "P002.annotations.csv", "metadata.csv"):
        (tmp_path / name).write_text("x")
    assert participants_from(tmp_path) == ["P001", "P002"]
