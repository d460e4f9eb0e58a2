"""Window labels from per-sample annotations: hand-checked cases and a brute-force reference on random data."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest

import data_dictionary as dd
from capture_pipeline import Recording
from capture_pipeline.errors import InputError

SLEEP = "7030 sleeping;MET 0.95"
DRIVE = "transportation;private transportation;16010 driving automobile or light truck (not a semi);MET 2.5"
SIT_A = ("home activity;miscellaneous;sitting;9060 sitting/lying reading or without observable/identifiable "
         "activities;MET 1.3")
SIT_B = "occupation;interruption;sitting;9060 sitting without observable/identifiable activities;MET 1.3"
WALK_NOCODE = "walking;MET 3.0"
OFFICE = "occupation;office and administrative support;11580 office/computer work general;MET 1.5"

T0 = np.datetime64("2016-11-13T02:18:00", "ns").view(np.int64)
S = 1_000_000_000


def grid(n_windows, fs=10, length_s=30):
    """Sample times at ``fs`` Hz covering ``n_windows`` windows, and the window starts."""
    t = T0 + np.arange(n_windows * length_s * fs, dtype=np.int64) * (S // fs)
    starts = T0 + np.arange(n_windows, dtype=np.int64) * length_s * S
    return t, starts


def fill(n, pieces):
    """Object array of length n from (count, annotation) pieces."""
    out = np.empty(n, dtype=object)
    i = 0
    for count, ann in pieces:
        out[i : i + count] = ann
        i += count
    assert i == n
    return out


def test_hand_checked_windows():
    t, starts = grid(6)  # 300 samples per window
    ann = fill(t.size, [
        (300, SLEEP),                              # 0: pure sleep
        (100, SLEEP), (200, DRIVE),                # 1: straddles, Driving holds 2/3
        (150, SLEEP), (150, DRIVE),                # 2: exactly half each: no majority
        (120, SIT_A), (100, SIT_B), (80, SLEEP),   # 3: two 9060 strings: Sitting 220/300
        (200, None), (100, SLEEP),                 # 4: 2/3 unannotated
        (60, OFFICE), (240, WALK_NOCODE),          # 5: unmapped strings only
    ])
    out = dd.window_labels(t, ann, starts)
    assert list(out.columns) == ["time", *dd.LABEL_COLUMNS]
    assert out["time"].dtype == "datetime64[ns]"
    assert out["time"].iloc[1] == pd.Timestamp("2016-11-13 02:18:30")
    assert out["n_samples"].tolist() == [300] * 6
    assert [None if pd.isna(x) else x for x in out["label"]] == ["Sleep", "Driving", None, "Sitting", None, None]
    assert out["reason"].tolist() == [dd.LABELLED, dd.LABELLED, dd.MIXED, dd.LABELLED, dd.UNANNOTATED,
                                      dd.NO_CPA_CODE]
    np.testing.assert_allclose(out["label_fraction"], [1, 2 / 3, 0.5, 220 / 300, 1.0, 1.0])
    np.testing.assert_allclose(out["unannotated_fraction"], [0, 0, 0, 0, 2 / 3, 0])
    # The most common string and its CPA code are kept for every window, labelled or not.
    assert out["annotation"].tolist() == [SLEEP, DRIVE, SLEEP, SIT_A, SLEEP, WALK_NOCODE]
    assert out["cpa_code"].tolist()[:5] == [7030, 16010, 7030, 9060, 7030]
    assert out["cpa_code"].isna().tolist() == [False] * 5 + [True]
    np.testing.assert_allclose(out["annotation_fraction"], [1, 2 / 3, 0.5, 0.4, 1.0, 0.8])


def test_all_missing_markers_are_unannotated():
    t, starts = grid(2)
    base = fill(t.size, [(100, None), (200, SLEEP), (150, DRIVE), (150, None)])
    expected = dd.window_labels(t, base, starts)
    for marker in (float("nan"), pd.NA, ""):
        other = base.copy()
        other[[i for i, a in enumerate(base) if a is None][::2]] = marker
        pd.testing.assert_frame_equal(dd.window_labels(t, other, starts), expected)
    np.testing.assert_allclose(expected["unannotated_fraction"], [1 / 3, 0.5], rtol=1e-12)


def test_counts_per_class_and_reason_are_logged(caplog):
    t, starts = grid(3)
    ann = fill(t.size, [(300, SLEEP), (300, SLEEP), (300, WALK_NOCODE)])
    with caplog.at_level("INFO", logger="data_dictionary.windows"):
        dd.window_labels(t, ann, starts)
    assert "window labels (paper): Sleep 2, no_cpa_code 1" in caplog.text


def test_thresholds_are_configurable():
    t, starts = grid(2)
    ann = fill(t.size, [(100, None), (200, SLEEP), (200, SLEEP), (100, DRIVE)])
    default = dd.window_labels(t, ann, starts)
    assert default["label"].tolist() == ["Sleep", "Sleep"]
    # Window 0 is 1/3 unannotated: unlabelled once the limit is below that.
    strict_na = dd.window_labels(t, ann, starts, max_unannotated=0.2)
    assert strict_na["reason"].tolist() == [dd.UNANNOTATED, dd.LABELLED]
    # Window 1 is 2/3 Sleep: unlabelled when a 0.9 majority is required.
    strict_major = dd.window_labels(t, ann, starts, min_majority=0.9)
    assert strict_major["reason"].tolist() == [dd.LABELLED, dd.MIXED]
    # Spec default "NA samples do not vote": a single annotated sample labels the window.
    lone = fill(t.size, [(299, None), (1, SLEEP), (300, None)])
    out = dd.window_labels(t, lone, starts, max_unannotated=1.0)
    assert out["label"].iloc[0] == "Sleep"
    assert out["reason"].tolist() == [dd.LABELLED, dd.UNANNOTATED]


def test_pooled_unmapped_samples_block_a_minority_class():
    t, starts = grid(1)
    # Sleep 40 % is the most common string, but 60 % of the window is unmapped activity: no label.
    ann = fill(t.size, [(120, SLEEP), (90, OFFICE), (90, WALK_NOCODE)])
    out = dd.window_labels(t, ann, starts)
    assert pd.isna(out["label"].iloc[0])
    assert out["reason"].iloc[0] == dd.MIXED
    assert out["annotation"].iloc[0] == SLEEP
    # Mostly one unmapped code: the reason says which kind of unmapped.
    ann = fill(t.size, [(200, OFFICE), (100, SLEEP)])
    assert dd.window_labels(t, ann, starts)["reason"].iloc[0] == dd.CODE_NOT_MAPPED


def test_windows_without_samples_and_samples_outside_windows():
    t, _ = grid(4)
    starts = T0 + np.array([-60, 0, 60, 200], dtype=np.int64) * S  # a window before the data, one after it
    ann = fill(t.size, [(t.size, SLEEP)])
    out = dd.window_labels(t, ann, starts)
    # Window 0 ends at -30 s; window 2 covers 60-90 s; samples in 30-60 s and 90-120 s belong to no window.
    assert out["n_samples"].tolist() == [0, 300, 300, 0]
    assert out["reason"].tolist() == [dd.NO_SAMPLES, dd.LABELLED, dd.LABELLED, dd.NO_SAMPLES]
    assert pd.isna(out["annotation"].iloc[0]) and pd.isna(out["cpa_code"].iloc[0])


def test_label_schemes_and_datetime_inputs():
    t, starts = grid(2)
    ann = fill(t.size, [(300, OFFICE), (300, WALK_NOCODE)])
    out = dd.window_labels(t.view("datetime64[ns]"), list(ann), pd.Series(starts.view("datetime64[ns]")),
                           mapping="Walmsley2020")
    assert out["label"].tolist() == ["sedentary", "moderate-vigorous"]
    # The CPA code column does not depend on the mapping.
    assert out["cpa_code"].iloc[0] == 11580 and pd.isna(out["cpa_code"].iloc[1])


def test_window_length_and_unsorted_input_errors():
    t, starts = grid(2)
    ann = fill(t.size, [(t.size, SLEEP)])
    with pytest.raises(InputError, match="not in order"):
        dd.window_labels(t[::-1], ann, starts)
    with pytest.raises(InputError, match="overlap"):
        dd.window_labels(t, ann, starts, window_length="40s")
    with pytest.raises(InputError, match="must match"):
        dd.window_labels(t, ann[:-1], starts)
    with pytest.raises(InputError, match="min_majority"):
        dd.window_labels(t, ann, starts, min_majority=1.0)
    with pytest.raises(InputError, match="strings or missing, found int 7030"):
        dd.window_labels(t, np.full(t.size, 7030, dtype=object), starts)
    with pytest.raises(InputError, match="int64 nanoseconds or datetime64"):
        dd.window_labels(t.astype(float), ann, starts)
    # 10-s windows on the same data (the CAPTURE-24 benchmark's window length).
    starts10 = T0 + np.arange(6, dtype=np.int64) * 10 * S
    assert dd.window_labels(t, ann, starts10, window_length="10s")["n_samples"].tolist() == [100] * 6


def test_recording_window_labels():
    t, starts = grid(2)
    ann = fill(t.size, [(300, SLEEP), (300, DRIVE)])
    rec = Recording(time=t, xyz=np.zeros((t.size, 3), np.float32), fs=10.0, meta={"path": "P001.csv.gz"},
                    extra={"annotation": ann})
    assert dd.recording_window_labels(rec, starts)["label"].tolist() == ["Sleep", "Driving"]
    rec.extra.clear()
    with pytest.raises(InputError, match="P001.csv.gz.*no 'annotation'"):
        dd.recording_window_labels(rec, starts)


def test_label_features_appends_the_label_columns():
    t, starts = grid(3)
    ann = fill(t.size, [(300, SLEEP), (300, DRIVE), (300, OFFICE)])
    rec = Recording(time=t, xyz=np.zeros((t.size, 3), np.float32), fs=10.0, meta={"path": "P007.csv.gz"},
                    extra={"annotation": ann})
    # A feature table whose rows are not in time order and whose index is not 0..n-1.
    feats = pd.DataFrame({"time": starts.view("datetime64[ns]")[[2, 0, 1]], "enmoTrunc": [0.3, 0.1, 0.2]},
                         index=[10, 11, 12])
    out = dd.label_features(feats, rec, participant="P007")
    assert list(out.columns) == ["participant", "time", "enmoTrunc", *dd.LABEL_COLUMNS]
    assert out["participant"].tolist() == ["P007"] * 3
    assert out["enmoTrunc"].tolist() == [0.3, 0.1, 0.2]
    assert [None if pd.isna(x) else x for x in out["label"]] == [None, "Sleep", "Driving"]
    assert out["cpa_code"].tolist() == [11580, 7030, 16010]
    assert out["cpa_code"].dtype == "Int64"
    with pytest.raises(InputError, match="P007.csv.gz.*already has column"):
        dd.label_features(out, rec)
    with pytest.raises(InputError, match="no 'time' column"):
        dd.label_features(feats.drop(columns="time"), rec)


def reference_labels(t, ann, starts, length, mapping, min_majority, max_unannotated):
    """Slow, obvious implementation of the rules in the window_labels docstring."""
    first_seen = {}
    for i, a in enumerate(ann):
        first_seen.setdefault(a, i)
    rows = []
    for s in starts:
        inside = [a for ti, a in zip(t, ann) if s <= ti < s + length]
        annotated = [a for a in inside if a is not None]
        if not inside:
            rows.append((None, None, dd.NO_SAMPLES))
            continue
        by_string = Counter(annotated)
        # Ties between strings: the one seen first in the recording.
        top = min(by_string.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))[0] if annotated else None
        code = dd.parse_annotation(top).cpa_code if top else None
        if not annotated or 1 - len(annotated) / len(inside) > max_unannotated:
            rows.append((None, code, dd.UNANNOTATED))
            continue
        votes = Counter(mapping.classify(a)[0] or "\uffff" for a in annotated)  # unmapped pooled
        ranked = sorted(votes.values(), reverse=True)
        best, n = max(votes.items(), key=lambda kv: kv[1])
        if n / len(annotated) <= min_majority or (len(ranked) > 1 and ranked[1] == n):
            rows.append((None, code, dd.MIXED))
        elif best == "\uffff":
            reason = mapping.classify(top)[1]
            rows.append((None, code, dd.MIXED if reason == dd.LABELLED else reason))
        else:
            rows.append((best, code, dd.LABELLED))
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_brute_force_reference_on_random_recordings(seed):
    rng = np.random.default_rng(seed)
    pool = dd.capture24_dictionary("public")["annotation"].tolist()
    choices = [None, SLEEP, DRIVE, SIT_A, SIT_B, OFFICE, WALK_NOCODE] + list(rng.choice(pool, 6))
    fs, n_win = 2, 60
    n = n_win * 30 * fs
    # Runs of random length, so that windows straddle several annotations; jittered, gappy sample times.
    run_len = rng.integers(1, 90, size=n)
    labels = rng.integers(0, len(choices), size=n)
    ann = np.array([choices[i] for i in np.repeat(labels, run_len)[:n]], dtype=object)
    step = (S // fs) + rng.integers(-50_000_000, 50_000_000, size=n)
    step[rng.random(n) < 0.002] += 45 * S  # a few gaps longer than a window
    t = T0 + np.cumsum(step)
    starts = T0 + np.arange(n_win + 40, dtype=np.int64) * 30 * S
    mapping = dd.default_mapping()
    for min_majority, max_unannotated in [(0.5, 0.5), (0.8, 0.1), (0.0, 1.0)]:
        out = dd.window_labels(t, ann, starts, mapping=mapping, min_majority=min_majority,
                               max_unannotated=max_unannotated)
        ref = reference_labels(t, ann, starts, 30 * S, mapping, min_majority, max_unannotated)
        got = [(None if pd.isna(l) else l, None if pd.isna(c) else int(c), r)
               for l, c, r in zip(out["label"], out["cpa_code"], out["reason"])]
        assert got == ref
        assert len({r for _, _, r in ref}) >= 3  # the random data exercises several rules
    # Window starts in any order give the same rows, in that order.
    perm = rng.permutation(starts.size)
    shuffled = dd.window_labels(t, ann, starts[perm], mapping=mapping, min_majority=min_majority,
                                max_unannotated=max_unannotated)
    pd.testing.assert_frame_equal(shuffled, out.iloc[perm].reset_index(drop=True))


def test_end_to_end_from_a_capture24_csv(tmp_path):
    # A CAPTURE-24-format file (time,x,y,z,annotation at 100 Hz, empty annotation = unannotated) read by the
    # package's reader; windows anchored at the first sample, as the feature tables are.
    import gzip

    from capture_pipeline import read

    n = 9000
    ann = fill(n, [(2000, SLEEP), (1500, ""), (2500, DRIVE), (3000, WALK_NOCODE)])
    times = pd.date_range("2016-11-13 02:18:00", periods=n, freq="10ms").strftime("%Y-%m-%d %H:%M:%S.%f")
    path = tmp_path / "P001.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("time,x,y,z,annotation\n")
        for tm, a in zip(times, ann):
            fh.write(f"{tm},-0.38,0.48,-0.79,{a}\n")
    rec = read(path)
    starts = rec.time[0] + np.arange(3, dtype=np.int64) * 30 * S
    out = dd.recording_window_labels(rec, starts)
    assert out["n_samples"].tolist() == [3000, 3000, 3000]
    # Window 0: 2000 Sleep + 1000 NA (1/3 unannotated); window 1: 500 NA + 2500 Driving; window 2: no code.
    assert [None if pd.isna(x) else x for x in out["label"]] == ["Sleep", "Driving", None]
    assert out["reason"].tolist() == [dd.LABELLED, dd.LABELLED, dd.NO_CPA_CODE]
    np.testing.assert_allclose(out["unannotated_fraction"], [1 / 3, 1 / 6, 0])
