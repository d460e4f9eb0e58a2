"""Activity discovery: window tables, label sources, standardisation, leakage, exclusions, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capture_pipeline.errors import InputError
from capture_pipeline.features.columns import FEATURE_COLUMNS
from data_dictionary.splits import make_split, write_split
from workflows.discovery import dataset
from workflows.discovery.train import DiscoveryConfig, output_names, train_model, training_arrays

CLASSES = ["Eating", "Running", "Sitting", "Sleep", "Walking"]


def window_table(pids, n_per=60, seed=0):
    """A synthetic `load_windows` table: class-dependent features, all windows valid."""
    rng = np.random.default_rng(seed)
    rows = []
    for pid in pids:
        labels = rng.choice(CLASSES + [None], n_per)
        centre = np.array([CLASSES.index(c) if c else 5 for c in labels], float)
        x = rng.normal(size=(n_per, len(FEATURE_COLUMNS))) + centre[:, None]
        t = pd.date_range("2016-11-14 15:00", periods=n_per, freq="30s")
        frame = pd.DataFrame(x, columns=FEATURE_COLUMNS)
        frame.insert(0, "time", t)
        frame.insert(0, "participant", pid)
        frame["nonwear"] = False
        frame["valid"] = True
        frame["label"] = pd.array(labels, dtype="string")
        frame["cpa_code"] = pd.array([7030 if c == "Sleep" else None for c in labels], dtype="Int64")
        frame["annotation"] = pd.array([f"{c};MET 1.0" if c else None for c in labels], dtype="string")
        frame["reason"] = np.where(pd.isna(labels), "code_not_mapped", "labelled")
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


@pytest.fixture
def split():
    return make_split([f"P{i:03d}" for i in range(1, 9)], labelled=2, unlabelled=4, test=2, seed=1)


def test_training_arrays_take_labels_from_labelled_participants_only(split):
    windows = window_table(split.labelled + split.unlabelled + split.test)
    data, y = training_arrays(windows, split, CLASSES, hidden={"Running"})
    lab_rows = windows["participant"].isin(split.labelled)
    visible = lab_rows & windows["label"].notna() & (windows["label"] != "Running")
    assert len(y) == int(visible.sum())
    assert "Running" not in [CLASSES[i] for i in y]  # hidden labels never shown
    # Running windows of labelled participants go to the unlabelled pool, test participants nowhere.
    assert data.x_unlabelled.shape[0] == int((windows["participant"].isin(split.unlabelled)).sum()
                                             + (lab_rows & ~visible).sum())
    assert not set(data.participant_unlabelled) & set(split.test)

    # Scrambling every label of unlabelled and test participants changes nothing that training sees.
    scrambled = windows.copy()
    other = ~lab_rows
    scrambled.loc[other, "label"] = np.random.default_rng(5).choice(CLASSES, int(other.sum()))
    data2, y2 = training_arrays(scrambled, split, CLASSES, hidden={"Running"})
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(data.x_labelled, data2.x_labelled)
    np.testing.assert_array_equal(data.x_unlabelled, data2.x_unlabelled)


TINY = dict(hidden=(16,), n_z=2, epochs=1, n_extra=2, batch_labelled=20, batch_unlabelled=20, threads=1)


def _train(windows, split, tmp_path, name, **kw):
    config = DiscoveryConfig(model="gmdgm", hidden_classes=("Running",), **{**TINY, **kw})
    return train_model(windows, split, CLASSES, config, tmp_path / name, progress=None)


def test_trained_model_ignores_test_data_and_unlabelled_labels(split, tmp_path):
    import torch

    windows = window_table(split.labelled + split.unlabelled + split.test)
    info = _train(windows, split, tmp_path, "a")
    changed = windows.copy()
    test_rows = changed["participant"].isin(split.test)
    changed.loc[test_rows, FEATURE_COLUMNS] = changed.loc[test_rows, FEATURE_COLUMNS] * 100 + 50
    unl_rows = changed["participant"].isin(split.unlabelled)
    changed.loc[unl_rows, "label"] = "Running"
    info2 = _train(changed, split, tmp_path, "b")
    # Standardisation comes from training windows only: test features scaled 100x change nothing.
    assert info["standardisation"] == info2["standardisation"]
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=False)["model_state"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=False)["model_state"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    # The standardisation is that of the labelled + unlabelled windows.
    train_rows = windows["participant"].isin(split.labelled + split.unlabelled)
    expected = windows.loc[train_rows, FEATURE_COLUMNS].to_numpy(np.float32).astype(np.float64).mean(0)
    np.testing.assert_allclose(info["standardisation"]["mean"], expected, rtol=1e-6, atol=1e-6)


def test_run_information_and_outputs(split, tmp_path):
    windows = window_table(split.labelled + split.unlabelled + split.test)
    info = _train(windows, split, tmp_path, "m")
    names = [o["name"] for o in info["outputs"]]
    assert names == output_names(CLASSES, {"Running"}, 2) == ["Eating", "U1", "Sitting", "Sleep", "Walking", "U5", "U6"]
    assert info["hidden_classes"] == ["Running"]
    prior = np.array(info["prior"])
    assert prior.sum() == pytest.approx(1.0)
    # Labelled classes share 0.5; the hidden slot and the 2 extra outputs share the other 0.5 equally.
    assert prior[[0, 2, 3, 4]].sum() == pytest.approx(0.5)
    np.testing.assert_allclose(prior[[1, 5, 6]], 0.5 / 3)
    assert info["labelled_counts"]["Running"] == 0


def test_nonwear_and_nonfinite_windows_are_excluded_and_counted(split, tmp_path):
    windows = window_table(split.labelled + split.unlabelled + split.test)
    lab = np.flatnonzero(windows["participant"].isin(split.labelled).to_numpy())
    windows.loc[lab[:5], "nonwear"] = True
    windows.loc[lab[5:8], "enmoTrunc"] = np.nan
    windows["valid"] = np.isfinite(windows[FEATURE_COLUMNS].to_numpy()).all(1) & ~windows["nonwear"]
    info = _train(windows, split, tmp_path, "x")
    ex = info["exclusions"]["labelled"]
    assert (ex["nonwear"], ex["nonfinite"], ex["kept"]) == (5, 3, len(lab) - 8)
    assert info["n_labelled"] + info["n_unlabelled"] == int(
        windows.loc[windows["participant"].isin(split.labelled + split.unlabelled), "valid"].sum())


def test_standardiser_drops_constant_columns_and_clips():
    x = np.column_stack([np.arange(10.0), np.zeros(10), np.r_[np.zeros(9), 1000.0]])
    std = dataset.Standardiser.fit(x, ["a", "temp", "b"], clip=3.0)
    assert std.columns == ["a", "b"] and std.dropped == ["temp"]
    out = std.transform(pd.DataFrame(x, columns=["a", "temp", "b"]))
    assert out.shape == (10, 2) and out.max() == pytest.approx(3.0)
    np.testing.assert_allclose(out[:, 0], (np.arange(10) - 4.5) / np.arange(10.0).std(), rtol=1e-6)
    assert dataset.Standardiser.from_dict(json.loads(json.dumps(std.to_dict()))).columns == ["a", "b"]


def _features_file(path, n=20, start="2016-11-14 15:00"):
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(n, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    frame.insert(0, "time", pd.date_range(start, periods=n, freq="30s"))
    frame["nonwear"] = False
    frame.to_parquet(path, index=False)
    return frame


def test_labels_from_bout_annotations_and_cache(tmp_path):
    feats = _features_file(tmp_path / "P001.features.parquet")
    bouts = pd.DataFrame({
        "start": ["2016-11-14 15:00:00.000000", "2016-11-14 15:04:40.000000"],
        "end": ["2016-11-14 15:04:40.000000", "2016-11-14 15:10:00.000000"],
        "annotation": ["7030 sleeping;MET 0.95", "leisure;sports;gymnasium and athletics;athletics;12150 running;MET 8.0"],
    })
    bouts.to_csv(tmp_path / "P001.annotations.csv", index=False)
    cache = tmp_path / "cache"
    labels, source = dataset.labels_for("P001", feats["time"], [tmp_path], cache_dir=cache)
    assert source.endswith("P001.annotations.csv")
    # Windows 0-8 are sleep; window 9 (15:04:30-15:05:00) is 10 s sleep + 20 s running: running wins.
    assert list(labels["label"][:9]) == ["Sleep"] * 9
    assert list(labels["label"][9:]) == ["Running"] * 11
    assert (cache / "P001.labels.parquet").is_file()
    again, source2 = dataset.labels_for("P001", feats["time"], [tmp_path], cache_dir=cache)
    assert source2 == str(cache / "P001.labels.parquet")
    pd.testing.assert_series_equal(again["label"].astype(object), labels["label"].astype(object),
                                   check_dtype=False)
    # A cached table made with other labelling options is not reused.
    strict, source3 = dataset.labels_for("P001", feats["time"], [tmp_path], cache_dir=cache, min_majority=0.9)
    assert source3.endswith("P001.annotations.csv") and pd.isna(strict["label"][9])
    # Without any source every window is unlabelled, with a reason.
    none, src = dataset.labels_for("P002", feats["time"], [tmp_path])
    assert src == "none" and none["label"].isna().all() and set(none["reason"]) == {dataset.NO_ANNOTATIONS}


def test_load_windows_marks_invalid_rows(tmp_path):
    feats = _features_file(tmp_path / "P001.features.parquet")
    feats.loc[3, "xStd"] = np.nan
    feats.loc[4, "nonwear"] = True
    feats.to_parquet(tmp_path / "P001.features.parquet", index=False)
    table = dataset.load_windows(dataset.find_feature_files([tmp_path]), [tmp_path])
    assert len(table) == 20 and table["participant"].eq("P001").all()
    assert list(np.flatnonzero(~table["valid"].to_numpy())) == [3, 4]


def test_bad_inputs_name_the_file(tmp_path):
    bad = tmp_path / "P009.features.parquet"
    pd.DataFrame({"time": pd.date_range("2016-01-01", periods=3, freq="30s"), "enmoTrunc": 1.0}).to_parquet(bad)
    with pytest.raises(InputError, match="P009.features.parquet.*lacks 125 feature column"):
        dataset.read_features(bad)
    junk = tmp_path / "P010.features.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="P010.features.parquet.*not a readable Parquet"):
        dataset.read_features(junk)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no \\*.features.parquet files"):
        dataset.find_feature_files([empty])
    with pytest.raises(InputError, match="no such file"):
        dataset.find_feature_files([tmp_path / "missing"])
    bouts = tmp_path / "P011.annotations.csv"
    bouts.write_text("begin,finish\n1,2\n")
    _features_file(tmp_path / "P011.features.parquet")
    with pytest.raises(InputError, match="P011.annotations.csv.*start,end,annotation"):
        dataset.labels_for("P011", pd.read_parquet(tmp_path / "P011.features.parquet")["time"], [tmp_path])


def test_train_refuses_unknown_hidden_class_and_no_labels(split, tmp_path):
    windows = window_table(split.labelled + split.unlabelled + split.test)
    with pytest.raises(InputError, match="hidden classes \\['Swimming'\\]"):
        train_model(windows, split, CLASSES, DiscoveryConfig(hidden_classes=("Swimming",), **TINY), tmp_path / "s",
                    progress=None)
    unlabelled = windows.assign(label=pd.array([None] * len(windows), dtype="string"))
    with pytest.raises(InputError, match="no labelled training window"):
        train_model(unlabelled, split, CLASSES, DiscoveryConfig(**TINY), tmp_path / "n", progress=None)


def test_split_file_round_trip_for_cli(split, tmp_path):
    write_split(split, tmp_path / "split.json")
    data = json.loads((tmp_path / "split.json").read_text())
    assert set(data["labelled"]) == set(split.labelled)


def test_resume_continues_the_same_run(split, tmp_path):
    windows = window_table(split.labelled + split.unlabelled + split.test)
    first = _train(windows, split, tmp_path, "r", epochs=1)
    assert first["epochs_run"] == 1
    second = _train(windows, split, tmp_path, "r", epochs=2, resume=True)
    assert second["epochs_run"] == 2 and len(second["history"]) == 2
    assert second["history"][0] == first["history"][0]
    assert second["steps"] == 2 * first["steps"]


def test_split_moves_are_scheduled_by_steps_whatever_the_cohort_size():
    from workflows.discovery.train import epochs_for_steps

    assert epochs_for_steps((600, 1200), 299) == (2, 4)  # the 48-participant cohort: 29,836 unlabelled windows
    assert epochs_for_steps((600, 1200), 86) == (7, 14)  # the demo cohort
    assert epochs_for_steps((600, 1200), 5000) == (1, 2)  # a large cohort: the first epochs, never the same twice
    assert epochs_for_steps((), 100) == ()
