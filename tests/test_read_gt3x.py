"""ActiGraph .gt3x reader: the real GGIR test file, the spec's packing example, idle-sleep fill and bad input."""

import io
import struct
import warnings
import zipfile

import numpy as np
import pytest

import capture_pipeline as cp
from capture_pipeline.readers import bitpack_kernels as K
from capture_pipeline.readers.gt3x import read_gt3x

REAL = "actigraph_testfile.gt3x"


@pytest.fixture(scope="module")
def real(real_dir):
    return cp.read(real_dir / REAL)


def test_real_file_counts_and_idle_sleep(real):
    assert real.meta["format"] == "gt3x" and real.meta["layout"] == "log.bin"
    q = real.qc
    # 588 one-second ACTIVITY records of 30 samples (GGIR reads 17640 rows), 23 idle-sleep periods of 1180 s
    assert q["activity_records"] == 588 and q["records"] == 771 and q["corrupt_records"] == 0
    assert q["usb_connection_records"] == 1 and q["odd_size_records"] == 0
    s = q["idle_sleep"]
    assert (s["events_enter"], s["events_exit"], s["filled_periods"], s["filled_s"]) == (23, 23, 23, 1180)
    assert s["filled_samples"] == 1180 * 30 and s["periods_without_event"] == 0
    assert s["periods"][0] == {"start": "2020-08-26T10:09:10", "length_s": 261, "after_idle_sleep_event": True}
    assert len(real) == 17640 + 35400 == 53040 == (1768 * 30)
    assert real.extra["idle_sleep"].sum() == 35400
    assert q["gap_count"] == 0 and q["time_backwards"] == 0 and q["measured_fs"] == pytest.approx(30.0)
    assert q["battery_volts"] == [3.988, 4.037]


def test_real_file_first_samples_pinned(real):
    # raw counts / 256 (info.txt "Acceleration Scale: 256.0")
    np.testing.assert_array_equal(real.xyz[:3] * 256, [[1, 6, -245], [-3, -1, -244], [-3, -3, -244]])
    # GGIR's read.gt3x test: X[1] = 0.004, Y[2] = -0.004, Z[1] = -0.957 after ActiGraph's rounding to 3 decimals
    assert (round(float(real.xyz[0, 0]), 3), round(float(real.xyz[1, 1]), 3), round(float(real.xyz[0, 2]), 3)) == (
        0.004, -0.004, -0.957)  # fmt: skip
    t = real.time.view("datetime64[ns]")
    assert str(t[0]) == "2020-08-26T10:09:00.000000000" and str(t[1]) == "2020-08-26T10:09:00.033333333"
    assert str(t[-1]) == "2020-08-26T10:38:27.966666667"
    assert real.meta["device_id"] == "MOS2E39180594" and real.meta["acceleration_scale"] == 256.0
    assert real.meta["utc_offset_s"] == 7200 and real.meta["logging_start"] == "2020-08-26T10:09:00.000000000"
    vm = np.linalg.norm(real.xyz, axis=1)
    assert 0.95 < np.median(vm) < 1.05
    assert abs(np.round(real.xyz[~real.extra["idle_sleep"]].astype(np.float64), 3).sum() - 2732.613) < 1e-6


def test_idle_sleep_fill_repeats_last_sample(real, real_dir):
    filled = real.extra["idle_sleep"]
    first = np.argmax(filled)
    assert first == 10 * 30  # 10:09:00-10:09:09 recorded, then idle sleep from 10:09:10
    assert np.all(real.xyz[first : first + 261 * 30] == real.xyz[first - 1])
    assert real.time[first] - real.time[first - 1] == pytest.approx(1e9 / 30, abs=1)
    raw = read_gt3x(real_dir / REAL, fill_idle_sleep=False)
    assert len(raw) == 17640 and raw.qc["gap_count"] == 23 and raw.qc["gap_total_s"] == pytest.approx(1180.0)
    np.testing.assert_array_equal(raw.xyz, real.xyz[~filled])
    np.testing.assert_array_equal(raw.time, real.time[~filled])


def test_spec_packing_example():
    # LogRecords/Activity.md: "00 60 08 EB D0 07 00 9E BF 00 70 08 EB F0" holds y, x, z = 6, 8, -323; 7, 9, -321;
    # 7, 8, -321 (the last nibble unused)
    buf = np.frombuffer(bytes.fromhex("006008EBD007009EBF007008EBF0"), np.uint8)
    raw = np.zeros((3, 3), np.int16)
    K.unpack12_yxz(buf, np.array([0]), np.array([3]), np.array([0]), raw)
    np.testing.assert_array_equal(raw, [[8, 6, -323], [9, 7, -321], [8, 7, -321]])


# --- synthetic files ------------------------------------------------------------------------------------------------

INFO = "Serial Number: {serial}\r\nFirmware: 2.5.0\r\nSample Rate: {fs}\r\nStart Date: {ticks}\r\n{extra}"
T0 = 1_600_000_000  # 2020-09-13 12:26:40


def _record(rtype, ts, payload, good=True):
    head = struct.pack("<BBIH", 0x1E, rtype, ts, len(payload))
    x = 0
    for b in head + payload:
        x ^= b
    return head + payload + bytes([(~x if good else x) & 0xFF])


def _activity2(ts, samples):
    return _record(0x1A, ts, np.asarray(samples, "<i2").tobytes())


def _zip(path, log=None, info=None, activity=None, fs=4, serial="MOS0TEST", extra="Acceleration Scale: 256.0\r\n"):
    ticks = 621_355_968_000_000_000 + T0 * 10_000_000
    with zipfile.ZipFile(path, "w") as z:
        if info is None:
            info = INFO.format(serial=serial, fs=fs, ticks=ticks, extra=extra)
        z.writestr("info.txt", info)
        if log is not None:
            z.writestr("log.bin", log)
        if activity is not None:
            z.writestr("activity.bin", activity)
    return path


def _four(v):
    return [[v, -v, 256]] * 4


def test_activity2_records_padding_and_usb(tmp_path):
    log = (_record(0x06, T0, b'{"MetadataType":"Bio"}') + _activity2(T0, _four(1)) + b"\x00\x00"
           + _activity2(T0 + 1, _four(2)) + _record(0x1A, T0 + 2, b"\x5a"))  # fmt: skip
    r = cp.read(_zip(tmp_path / "a2.gt3x", log))
    assert len(r) == 8 and r.qc["zero_padding_bytes"] == 2 and r.qc["usb_connection_records"] == 1
    np.testing.assert_allclose(r.xyz[4], [2 / 256, -2 / 256, 1.0])
    assert r.time[4] - r.time[0] == 1_000_000_000 and r.time[1] - r.time[0] == 250_000_000


def test_gap_without_idle_sleep_event_is_filled_and_flagged(tmp_path):
    log = _activity2(T0, _four(1)) + _record(0x03, T0 + 1, b"\x08") + _activity2(T0 + 3, _four(2)) \
        + _activity2(T0 + 6, _four(3))  # fmt: skip
    r = cp.read(_zip(tmp_path / "gaps.gt3x", log))
    s = r.qc["idle_sleep"]
    assert s["filled_periods"] == 2 and s["periods_without_event"] == 1 and s["filled_samples"] == (2 + 2) * 4
    assert [p["after_idle_sleep_event"] for p in s["periods"]] == [True, False]
    assert len(r) == 7 * 4 and np.all(np.diff(r.time) == 250_000_000)


def test_corrupt_record_is_skipped_and_reported(tmp_path):
    log = _activity2(T0, _four(1)) + _activity2(T0 + 1, _four(2))[:-1] + b"\x00" + _activity2(T0 + 2, _four(3))
    with pytest.warns(UserWarning, match="1 log records fail their checksum"):
        r = read_gt3x(_zip(tmp_path / "bad.gt3x", log))
    assert r.qc["corrupt_records"] == 1 and r.qc["corrupt_record_indices"] == [1]
    assert r.qc["activity_records"] == 2
    # the lost second is filled like idle sleep but marked as unexplained
    assert r.qc["idle_sleep"]["periods_without_event"] == 1 and r.extra["idle_sleep"].sum() == 4


def test_corrupt_record_in_real_file(tmp_path, real_dir):
    with zipfile.ZipFile(real_dir / REAL) as z:
        info, log = z.read("info.txt"), bytearray(z.read("log.bin"))
    log[1073 + 8 + 50] ^= 0x55  # inside the payload of the first ACTIVITY record
    with pytest.warns(UserWarning, match="fail their checksum"):
        r = read_gt3x(_zip(tmp_path / "real_bad.gt3x", bytes(log), info=info.decode()))
    assert r.qc["corrupt_records"] == 1 and r.qc["corrupt_activity_records"] == 1
    assert r.qc["activity_records"] == 587
    assert str(r.time[:1].view("datetime64[ns]")[0]) == "2020-08-26T10:09:01.000000000"


def test_corrupt_size_field_resynchronises(tmp_path):
    bad = bytearray(_activity2(T0 + 1, _four(2)))
    bad[6] = 0xF0  # payload size 240: runs past the next records
    log = _activity2(T0, _four(1)) + bytes(bad) + _activity2(T0 + 2, _four(3)) + _activity2(T0 + 3, _four(4))
    r = _read_quiet(_zip(tmp_path / "size.gt3x", log))
    assert r.qc["activity_records"] == 3 and r.qc["skipped_bytes"] > 0
    np.testing.assert_allclose(r.xyz[-1], [4 / 256, -4 / 256, 1.0])


def test_truncated_log(tmp_path):
    log = _activity2(T0, _four(1)) + _activity2(T0 + 1, _four(2))
    with pytest.warns(UserWarning, match="log.bin ends with an incomplete record"):
        r = read_gt3x(_zip(tmp_path / "trunc.gt3x", log[:-10]))
    assert len(r) == 4 and r.qc["truncated_bytes"] == 9 + 24 - 10


def test_old_activity_bin_layout(tmp_path):
    packed = bytes.fromhex("006008EBD007009EBF007008EBF0")
    r = cp.read(_zip(tmp_path / "old.gt3x", activity=packed, fs=30, serial="NEO1C16110020", extra=""))
    assert r.meta["layout"] == "activity.bin" and r.meta["acceleration_scale"] == 341.0
    np.testing.assert_allclose(r.xyz * 341, [[8, 6, -323], [9, 7, -321], [8, 7, -321]], atol=1e-4)
    assert str(r.time[:1].view("datetime64[ns]")[0]) == "2020-09-13T12:26:40.000000000"
    assert r.time[2] - r.time[0] == round(2e9 / 30)


def test_wrong_magic_and_broken_zips(tmp_path, real_dir):
    p = tmp_path / "x.gt3x"
    _zip(p, log=None, activity=None)
    with pytest.raises(cp.UnknownFormatError, match="x.gt3x: a zip archive without info.txt and log.bin"):
        cp.read(p)
    with pytest.raises(cp.InputError, match="zip archive without log.bin or activity.bin"):
        read_gt3x(p)
    p.write_bytes(b"PK\x03\x04" + b"\x01" * 50)
    with pytest.raises(cp.InputError, match="not a readable .gt3x"):
        read_gt3x(p)
    data = (real_dir / REAL).read_bytes()
    p.write_bytes(data[: len(data) // 2])  # a truncated download: the zip directory is gone
    with pytest.raises(cp.InputError, match="x.gt3x: starts like a zip"):
        cp.read(p)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("info.txt", "Serial Number: MOS0\r\nSample Rate: 0\r\n")
        z.writestr("log.bin", _activity2(T0, _four(1)))
    p.write_bytes(buf.getvalue())
    with pytest.raises(cp.InputError, match="no positive 'Sample Rate'"):
        cp.read(p)
    _zip(p, log=_record(0x02, T0, b"\xc5\x0f"))
    with pytest.raises(cp.InputError, match="log.bin has no valid activity record"):
        cp.read(p)


def _read_quiet(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_gt3x(path)
