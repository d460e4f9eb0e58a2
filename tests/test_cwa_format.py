"""CWA format details on synthetic files: packed codec, checksums, every rate and range, segments."""

import numpy as np
import pytest

import capture_pipeline as cp
from capture_pipeline.cwa_writer import write_cwa
from capture_pipeline.readers import cwa as C
from capture_pipeline.readers import cwa_kernels as K
from conftest import regular_times


def c_unpack(v, shift):
    """Scalar port of the C reference macro: (int16)((uint16)(v << 6) & 0xFFC0) >> (6 - e)."""
    e = (v >> 30) & 3
    u = ((v >> shift) << 6) & 0xFFC0
    s = u - 0x10000 if u & 0x8000 else u
    return s >> (6 - e)


def test_packed_codec_exhaustive():
    # all 1024 ten-bit values × 4 exponents on each axis, decoded through the reader's kernel
    vals = np.arange(1024, dtype=np.uint64)
    words = []
    for e in range(4):
        words.append(vals | (((vals * 7) % 1024) << 10) | (((vals * 13) % 1024) << 20) | (e << 30))
    words = np.concatenate(words).astype(np.uint32)
    n = len(words)
    n_blocks = n // 120 + 1
    blocks = np.zeros((n_blocks, 512), np.uint8)
    padded = np.zeros(n_blocks * 120, np.uint32)
    padded[:n] = words
    blocks[:, 30:510] = padded.reshape(n_blocks, 120).view(np.uint8)
    counts = np.full(n_blocks, 120, np.int64)
    xyz = np.empty((n_blocks * 120, 3), np.float32)
    K.decode_samples(blocks, np.arange(n_blocks), np.arange(n_blocks) * 120, counts,
                     np.full(n_blocks, K.PACKED3), np.zeros(n_blocks, np.int64), 8.0, xyz,
                     np.empty((0, 3), np.float32))  # fmt: skip
    expect = np.array([[c_unpack(int(v), s) for s in (0, 10, 20)] for v in words]) / 256.0
    assert np.array_equal(xyz[:n], expect)
    # edge values: 0x200 -> -512, 0x1FF -> 511, 0x3FF -> -1 (exponent 0)
    assert xyz[0x200, 0] * 256 == -512 and xyz[0x1FF, 0] * 256 == 511 and xyz[0x3FF, 0] * 256 == -1


def test_unpack_timestamp_worked_example():
    s, ok = C.unpack_timestamps(np.array([0x4CB4ADC7, 0], dtype=np.uint32))
    assert ok.tolist() == [True, False]  # month 0 is invalid
    assert s[0] == np.datetime64("2019-02-26T10:55:07", "s").astype(np.int64)


@pytest.mark.parametrize("fs", [6.25, 12.5, 25, 50, 100, 200, 400, 800, 1600, 3200])
def test_every_rate_code_round_trips(tmp_path, fs):
    n = 3000
    true_fs = fs * 0.987  # real clocks run slow (cwa.md §7.4)
    t = regular_times(n, true_fs)
    rng = np.random.default_rng(int(fs * 4))
    xyz = rng.uniform(-2, 2, (n, 3))
    write_cwa(tmp_path / "f.cwa", t, xyz, fs=fs)
    r = cp.read(tmp_path / "f.cwa")
    assert r.fs == fs and len(r) == n and r.qc["corrupt_blocks"] == 0 and r.qc["segments"] == 1
    # anchors carry 1/32768 s; at 12.5 and 6.25 Hz the device's integer-rate shim is undone the same way
    assert np.abs(r.time - t).max() <= 31_000
    assert np.abs(r.xyz - xyz).max() <= 2 / 256 + 1e-7  # half the 4/256 g step of packed ±8 g
    assert r.qc["measured_fs"] == pytest.approx(true_fs, rel=1e-4)


@pytest.mark.parametrize("range_g", [2, 4, 8, 16])
@pytest.mark.parametrize("layout", ["packed", "int16", "ax6"])
def test_every_range_and_layout_round_trips(tmp_path, range_g, layout):
    n = 500
    t = regular_times(n)
    rng = np.random.default_rng(range_g)
    xyz = rng.uniform(-1.2 * range_g, 1.2 * range_g, (n, 3))
    gyro = rng.uniform(-300, 300, (n, 3)) if layout == "ax6" else None
    write_cwa(tmp_path / "f.cwa", t, xyz, range_g=range_g, packed=layout == "packed", gyro=gyro, gyro_range_dps=250)
    r = cp.read(tmp_path / "f.cwa")
    assert r.meta["range_g"] == range_g
    if layout == "packed":
        step = (1 << {16: 3, 8: 2, 4: 1, 2: 0}[range_g]) / 256
        expect = np.clip(xyz, -range_g, range_g - step)
    elif layout == "int16":
        step, expect = 1 / 256, xyz  # AX3 int16: 1/256 g and no clipping at the range
    else:
        step = 1 / 2 ** (8 + {16: 3, 8: 4, 4: 5, 2: 6}[range_g])
        expect = np.clip(xyz, -32768 * step, 32767 * step)
        np.testing.assert_allclose(r.gyro, np.clip(gyro, -250, 250 * 32767 / 32768), atol=250 / 32768)
        assert r.meta["device_type"] == "AX6"
    np.testing.assert_allclose(r.xyz, expect, atol=step / 2 + 1e-6)
    if layout == "packed":
        # samples at the edge of the representable range (values are 1.2× beyond it, so many are)
        at_edge = int((np.abs(r.xyz) >= range_g - step).any(axis=1).sum())
        assert r.qc["clipped_samples"] == at_edge > 100


def _blocks(path):
    data = bytearray(open(path, "rb").read())
    return data


def test_checksum_rejects_any_changed_byte(tmp_path):
    t = regular_times(1200)
    write_cwa(tmp_path / "f.cwa", t, np.zeros((1200, 3)) + [0, 0, 1])
    data = _blocks(tmp_path / "f.cwa")
    rng = np.random.default_rng(1)
    for pos in rng.choice(np.arange(2, 512), 40, replace=False):  # keep the "AX" tag
        bad = bytearray(data)
        bad[1024 + 3 * 512 + pos] ^= 0x5A
        (tmp_path / "bad.cwa").write_bytes(bad)
        r = cp.read(tmp_path / "bad.cwa")
        assert r.qc["corrupt_block_indices"] == [3], pos
        assert len(r) == 1200 - 120


def test_restart_sequence_and_backward_time_split_segments(tmp_path):
    a = regular_times(1200, 99.0, "2024-03-01T12:00:00")
    b = regular_times(1200, 99.0, "2024-03-01T13:00:00")  # logging restarted an hour later
    c = regular_times(1200, 99.0, "2024-03-01T12:30:00")  # clock set back
    for name, t in (("a", a), ("b", b), ("c", c)):
        write_cwa(tmp_path / f"{name}.cwa", t, np.zeros((1200, 3)) + [0, 0, 1])
    parts = [_blocks(tmp_path / f"{n}.cwa") for n in "abc"]
    (tmp_path / "joined.cwa").write_bytes(parts[0] + parts[1][1024:] + parts[2][1024:])
    r = cp.read(tmp_path / "joined.cwa")
    assert len(r) == 3600 and r.qc["segments"] == 3
    assert r.qc["segment_breaks"] == {"logging resumed": 2}
    assert r.qc["gap_count"] == 1 and r.qc["gaps"][0]["after_sample"] == 1199
    assert r.qc["gaps"][0]["length_s"] == pytest.approx(3600 - 1199 / 99.0, abs=0.05)
    assert r.qc["time_backwards"] == 1 and r.qc["first_backwards_sample"] == 2400
    assert np.abs(r.time - np.concatenate([a, b, c])).max() <= 31_000


def test_overflow_events_are_reported(tmp_path):
    t = regular_times(1200)
    write_cwa(tmp_path / "f.cwa", t, np.zeros((1200, 3)) + [0, 0, 1])
    data = _blocks(tmp_path / "f.cwa")
    off = 1024 + 5 * 512
    data[off + 22] |= 0x10  # events b4: hardware FIFO overflow
    words = np.frombuffer(bytes(data[off : off + 510]), "<u2")
    data[off + 510 : off + 512] = int((-int(words.sum())) & 0xFFFF).to_bytes(2, "little")
    (tmp_path / "o.cwa").write_bytes(data)
    r = cp.read(tmp_path / "o.cwa")
    assert r.qc["overflow_blocks"] == 1 and r.qc["corrupt_blocks"] == 0
