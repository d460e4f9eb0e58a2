"""The CSV reader: CAPTURE-24 layout, OMGUI exports, options, units."""

import gzip

import numpy as np
import pytest

import capture_pipeline as cp
from conftest import regular_times


def write_c24(path, n=500, annotate=True, scale=1.0, compress=False):
    t = regular_times(n, 100.0, "2016-11-13T02:18:00").view("datetime64[ns]")
    rng = np.random.default_rng(0)
    xyz = rng.normal([0, 0, 1], 0.05, (n, 3)) * scale
    lines = ["time,x,y,z,annotation"]
    for i in range(n):
        ann = "7030 sleeping;MET 0.95" if annotate and i < n // 2 else ""
        stamp = str(t[i]).replace("T", " ")[:26]
        lines.append(f"{stamp},{xyz[i, 0]:.6f},{xyz[i, 1]:.6f},{xyz[i, 2]:.6f},{ann}")
    data = ("\n".join(lines) + "\n").encode()
    if compress:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return t.astype(np.int64), xyz


def test_capture24_layout_with_annotations(tmp_path):
    t, xyz = write_c24(tmp_path / "P001.csv.gz", compress=True)
    assert cp.detect_format(tmp_path / "P001.csv.gz") == "csv"
    r = cp.read(tmp_path / "P001.csv.gz")
    assert np.array_equal(r.time, t)
    np.testing.assert_allclose(r.xyz, xyz, atol=5e-7 + 1e-7)
    ann = r.extra["annotation"]
    assert ann[0] == "7030 sleeping;MET 0.95" and ann[-1] is None and sum(a is None for a in ann) == 250
    assert r.fs == 100.0 and r.temperature is None and r.meta["units"] == "g"


def test_units_auto_detects_m_per_s2(tmp_path):
    _, xyz = write_c24(tmp_path / "ms2.csv", scale=9.80665)
    r = cp.read(tmp_path / "ms2.csv")
    assert r.meta["units"] == "m/s2" and "median vector magnitude" in r.meta["units_reason"]
    np.testing.assert_allclose(r.xyz, xyz / 9.80665, atol=1e-6)
    forced = cp.read(tmp_path / "ms2.csv", units="g")
    assert forced.meta["units"] == "g" and forced.xyz[0, 2] > 9


def test_headerless_unix_export(real_dir):
    r = cp.read(real_dir / "ax3_testfile_unix_timestamps.csv")
    assert len(r) == 210 and r.meta["time_format"] == "unix_s" and not r.meta["header"]
    assert r.time[0] == np.datetime64("2019-02-26T10:55:06", "ns").astype(np.int64)
    assert r.time[1] - r.time[0] == 10_000_000  # exact to the printed digits
    assert r.xyz[0].tolist() == [0.328125, 0.984375, 0.203125]


def test_headerless_iso_export_with_gyro(real_dir):
    r = cp.read(real_dir / "ax6_testfile_formatted_timestamps.csv")
    assert len(r) == 210 and r.meta["time_format"] == "iso"
    assert r.time[0] == np.datetime64("2019-12-23T21:04:06.690", "ns").astype(np.int64)
    np.testing.assert_allclose(r.gyro[0], [0.274658, -0.503540, 15.769958], atol=1e-6)


def test_unix_milliseconds_and_custom_columns(tmp_path):
    p = tmp_path / "ms.csv"
    p.write_text("ts,ax,ay,az\n1700000000000,0,0,1\n1700000000010,0,0,1\n1700000000020,0,1,0\n")
    r = cp.read(p, time_col="ts", xyz_cols=("ax", "ay", "az"))
    assert r.meta["time_format"] == "unix_ms"
    assert np.diff(r.time).tolist() == [10_000_000, 10_000_000]
    with pytest.raises(cp.InputError, match=r"ms.csv: missing column\(s\) time, x, y, z"):
        cp.read(p)


def test_time_going_backwards_is_reported_not_dropped(tmp_path):
    p = tmp_path / "back.csv"
    p.write_text(
        "time,x,y,z\n2020-01-01 00:00:00.00,0,0,1\n2020-01-01 00:00:00.01,0,0,1\n"
        "2020-01-01 00:00:00.005,0,0,1\n2020-01-01 00:00:00.02,0,0,1\n"
    )
    r = cp.read(p)
    assert len(r) == 4
    assert r.qc["time_backwards"] == 1 and r.qc["first_backwards_sample"] == 2
