"""GENEActiv .bin reader: the real GGIRread test file, the bit layout, calibration, time base and bad input."""

import gzip
import warnings

import numpy as np
import pytest

import capture_pipeline as cp
from capture_pipeline.readers.geneactiv import read_geneactiv

REAL = "GENEActiv_testfile.bin"
GAIN = (25875, 25734, 25538)
OFFSET = (439, -662, -3056)


def _read_quiet(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cp.read(path, **kw)


@pytest.fixture(scope="module")
def real(real_dir):
    with pytest.warns(UserWarning) as rec:
        r = cp.read(real_dir / REAL)
    msgs = " ".join(str(w.message) for w in rec)
    assert "last page incomplete (231 whole samples kept" in msgs
    assert "header declares 222048 pages, the file holds 17" in msgs
    return r


def test_real_file_counts_and_qc(real):
    # the GGIRread test file is the first 64 KiB of a recording: 16 whole pages of 300 samples and part of a 17th
    assert real.meta["format"] == "geneactiv"
    assert len(real) == 16 * 300 + 231 == 5031
    q = real.qc
    assert (q["pages_declared"], q["pages"], q["pages_read"], q["corrupt_pages"]) == (222048, 17, 17, 0)
    assert (q["truncated_last_page"], q["truncated_bytes"]) == (231, 9)
    assert q["gap_count"] == 0 and q["time_backwards"] == 0 and q["clipped_samples"] == 0
    assert q["battery_volts"] == [4.1493, 4.1493]


def test_real_file_first_samples_pinned(real, real_dir):
    # first sample "0C4FFDF3D004": x=0x0C4=196, y=0xFFD=-3, z=0xF3D=-195, light=1, button 0; decoded here by hand
    text = (real_dir / REAL).read_bytes().decode("latin-1")
    hexline = text.split("Measurement Frequency:85.7\r\n")[1][:24]
    assert hexline[:12] == "0C4FFDF3D004"
    raw = [int(hexline[i : i + 3], 16) for i in (0, 3, 6)]
    raw = [v - 4096 if v >= 2048 else v for v in raw]
    assert raw == [196, -3, -195]
    expect = [(r * 100 - o) / g for r, o, g in zip(raw, OFFSET, GAIN)]
    np.testing.assert_allclose(real.xyz[0], expect, rtol=1e-6)
    np.testing.assert_allclose(real.xyz[:3], [[0.7405217, 0.01406699, -0.6439032], [0.6091208, 0.24722157, -0.81227976],
                                              [0.64776814, 0.23556384, -0.7809539]], rtol=1e-6)  # fmt: skip
    # GGIRread's own test: z of sample 300 (the last of page 1) and light of sample 2 (1 * 800 lux / 300 V)
    assert real.xyz[299, 2] == pytest.approx(-0.80836403369903564453, abs=1e-6)
    assert real.extra["light"][1] == pytest.approx(800 / 300, rel=1e-6)
    assert real.temperature[0] == 21.5 and real.temperature[-1] == 23.1
    assert real.extra["button"].sum() == 0


def test_real_file_time_base_and_plausibility(real):
    t = real.time
    assert str(t[:1].view("datetime64[ns]")[0]) == "2013-05-30T10:12:54.500000000"  # the first page time
    # "85.7 Hz" pages are 3.5 s apart: 600/7 Hz, 11.666... ms per sample, also across page boundaries
    assert real.fs == 85.7 and real.qc["measured_fs"] == pytest.approx(600 / 7, rel=1e-6)
    steps = np.diff(t)
    assert steps.min() >= 11_666_666 and steps.max() <= 11_666_667
    assert t[300] - t[0] == 3_500_000_000 and t[4800] - t[0] == 16 * 3_500_000_000
    vm = np.linalg.norm(real.xyz, axis=1)
    assert 0.95 < np.median(vm) < 1.05
    assert real.meta["device_id"] == "012967" and real.meta["range_g"] == 8.0
    assert real.meta["utc_offset_s"] == 3600 and real.meta["configured_fs"] == 85.7
    assert real.meta["calibration"]["gain"] == list(map(float, GAIN))


def test_gzip_and_explicit_format(real, real_dir, tmp_path):
    p = tmp_path / "ga.bin.gz"
    p.write_bytes(gzip.compress((real_dir / REAL).read_bytes()))
    assert cp.detect_format(p) == "geneactiv"
    r = _read_quiet(p, format="geneactiv")
    assert np.array_equal(r.xyz, real.xyz) and np.array_equal(r.time, real.time)


# --- synthetic files: bit layout, time base, bad input -----------------------------------------------------------


def _header(pages, fs="85.7", lux=800, volts=300):
    return (
        "Device Identity\r\nDevice Unique Serial Code:000001\r\nDevice Type:GENEActiv\r\nDevice Model:1.1\r\n"
        "Device Firmware Version:Ver1.30\r\n\r\nDevice Capabilities\r\nAccelerometer Range:-8 to 8\r\n\r\n"
        f"Configuration Info\r\nMeasurement Frequency:{fs} Hz\r\nTime Zone:GMT -05:00\r\n\r\n"
        "Calibration Data\r\nx gain:25600\r\nx offset:0\r\ny gain:25600\r\ny offset:100\r\nz gain:12800\r\n"
        f"z offset:0\r\nVolts:{volts}\r\nLux:{lux}\r\n\r\nMemory Status\r\nNumber of Pages:{pages}\r\n\r\n"
    )


def _page(seq, time, samples, temp="20.0", fs="85.7"):
    """A page from (x, y, z, light, button) tuples."""
    words = []
    for x, y, z, light, button in samples:
        last = (light << 2) | (button << 1)
        words.append("".join(f"{v & 0xFFF:03X}" for v in (x, y, z, last)))
    return (
        f"Recorded Data\r\nDevice Unique Serial Code:000001\r\nSequence Number:{seq}\r\nPage Time:{time}\r\n"
        f"Unassigned:\r\nTemperature:{temp}\r\nBattery voltage:4.0\r\nDevice Status:Recording\r\n"
        f"Measurement Frequency:{fs}\r\n{''.join(words)}\r\n"
    )


def _still(n, x=0):
    return [(x, 0, 0, 0, 0)] * n


def test_bit_layout_light_button_and_clipping(tmp_path):
    samples = [(-2048, 2047, 256, 1023, 1), (1, -1, -256, 0, 0), (0, 1, 0, 512, 1)] + _still(297)
    p = tmp_path / "bits.bin"
    p.write_text(_header(1) + _page(0, "2020-01-01 00:00:00:000", samples), newline="")
    r = read_geneactiv(p)
    # g = (raw * 100 - offset) / gain with the synthetic calibration
    np.testing.assert_allclose(r.xyz[0], [-2048 * 100 / 25600, (2047 * 100 - 100) / 25600, 256 * 100 / 12800])
    np.testing.assert_allclose(r.xyz[1], [100 / 25600, (-100 - 100) / 25600, -256 * 100 / 12800])
    assert r.extra["light"][:3].tolist() == pytest.approx([1023 * 800 / 300, 0.0, 512 * 800 / 300])
    assert r.extra["button"][:3].tolist() == [1, 0, 1]
    assert r.qc["clipped_samples"] == 1
    assert r.meta["utc_offset_s"] == -5 * 3600
    # a single page has no next page time: spread at the header rate
    assert r.time[1] - r.time[0] == round(1e9 / 85.7)


def test_page_times_drive_the_rate_and_gaps_are_reported(tmp_path):
    pages = [
        _page(0, "2020-01-01 00:00:00:000", _still(300)),
        _page(1, "2020-01-01 00:00:03:500", _still(300)),
        _page(2, "2020-01-01 00:01:00:000", _still(300)),  # a gap after page 1
    ]
    p = tmp_path / "gap.bin"
    p.write_text(_header(3) + "".join(pages), newline="")
    r = read_geneactiv(p)
    assert len(r) == 900
    assert r.time[300] - r.time[0] == 3_500_000_000 and r.time[1] - r.time[0] == 11_666_667
    # the page before the gap uses the rate measured on regular pages, not the rounded header rate
    assert r.time[599] - r.time[300] == round(299 * 3.5e9 / 300)
    assert r.qc["gap_count"] == 1 and r.qc["gaps"][0]["after_sample"] == 599


def test_corrupt_page_is_dropped_and_reported(tmp_path, real_dir):
    data = bytearray((real_dir / REAL).read_bytes())
    third = [i for i in range(len(data)) if data.startswith(b"Recorded Data", i)][2]
    hex_at = data.index(b"Measurement Frequency:85.7\r\n", third) + 28
    data[hex_at + 100] = ord("G")  # not a hex digit
    p = tmp_path / "corrupt.bin"
    p.write_bytes(bytes(data))
    r = _read_quiet(p)
    assert r.qc["corrupt_pages"] == 1 and r.qc["corrupt_page_indices"] == [2]
    assert r.qc["corrupt_reasons"] == {"hex data (non-hex characters)": 1}
    assert len(r) == 5031 - 300 and r.qc["gap_count"] == 1


def test_corrupt_page_header_is_dropped(tmp_path, real_dir):
    good_time = b"Page Time:2013-05-30 10:12:58:000"
    data = (real_dir / REAL).read_bytes().replace(good_time, good_time.replace(b"10:12", b"1x:12"))
    p = tmp_path / "badtime.bin"
    p.write_bytes(data)
    r = _read_quiet(p)
    assert r.qc["corrupt_page_indices"] == [1] and r.qc["corrupt_reasons"] == {"page time": 1}
    data = (real_dir / REAL).read_bytes().replace(b"Sequence Number:3\r\n", b"")
    p.write_bytes(data)
    r = _read_quiet(p)
    assert r.qc["corrupt_page_indices"] == [3]
    assert r.qc["corrupt_reasons"]["page structure (lines missing or extra)"] == 1


def test_truncated_inside_a_page_header(tmp_path, real_dir):
    data = (real_dir / REAL).read_bytes()
    cut = data.index(b"Recorded Data", data.index(b"Sequence Number:5")) + 60
    p = tmp_path / "cut.bin"
    p.write_bytes(data[:cut])
    r = _read_quiet(p)
    # pages 0-5 whole; page 6 lost its header lines: dropped and reported, never silently
    assert len(r) == 6 * 300 and r.qc["pages"] == 7 and r.qc["corrupt_page_indices"] == [6]


def test_wrong_magic_and_missing_parts(tmp_path, real_dir):
    data = (real_dir / REAL).read_bytes()
    p = tmp_path / "magic.bin"
    p.write_bytes(b"Device Identitx" + data[15:])
    with pytest.raises(cp.InputError, match="magic.bin: not a GENEActiv .bin file"):
        read_geneactiv(p)
    p.write_bytes(data[: data.index(b"Recorded Data")])
    with pytest.raises(cp.InputError, match="no 'Recorded Data' page after the header"):
        cp.read(p)
    p.write_bytes(data.replace(b"x gain:25875", b"x gain:abc"))
    with pytest.raises(cp.InputError, match="'Calibration Data / x gain' is missing or not a number"):
        cp.read(p)
    p.write_bytes(_header(1).encode() + _page(0, "2020-01-01 00:00:00:000", _still(3)).replace("000", "0Z0").encode())
    with pytest.raises(cp.InputError, match="none of the 1 pages is readable"):
        cp.read(p)
