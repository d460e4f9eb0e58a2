"""Bad input: each case is a clear capture_pipeline error naming the file and the problem, or a QC entry."""

import numpy as np
import pytest

import capture_pipeline as cp


def test_empty_file(tmp_path):
    p = tmp_path / "empty.cwa"
    p.write_bytes(b"")
    with pytest.raises(cp.InputError, match=r"empty.cwa: file is empty \(0 bytes\)"):
        cp.read(p)


def test_missing_file(tmp_path):
    with pytest.raises(cp.InputError, match="nope.cwa: file not found"):
        cp.read(tmp_path / "nope.cwa")


def test_random_bytes_named_cwa(tmp_path):
    p = tmp_path / "random.cwa"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(cp.UnknownFormatError, match="random.cwa: content is neither an Axivity CWA"):
        cp.read(p)


def test_cwa_header_only_and_short_header(tmp_path, real_dir):
    head = (real_dir / "ax3_testfile.cwa").read_bytes()[:1024]
    (tmp_path / "h.cwa").write_bytes(head)
    with pytest.raises(cp.InputError, match="h.cwa: no data blocks after the header"):
        cp.read(tmp_path / "h.cwa")
    (tmp_path / "s.cwa").write_bytes(head[:300])
    with pytest.raises(cp.InputError, match="s.cwa: too short for a CWA file: 300 bytes"):
        cp.read(tmp_path / "s.cwa")


def test_truncated_last_block_is_reported(tmp_path, real_dir):
    data = (real_dir / "ax3_testfile.cwa").read_bytes()
    p = tmp_path / "trunc.cwa"
    p.write_bytes(data[:-100])
    with pytest.warns(UserWarning, match="trunc.cwa: last block truncated"):
        r = cp.read(p)
    assert r.qc["truncated_bytes"] == 412 and r.qc["blocks"] == 144 and len(r) == 144 * 120


def test_every_block_corrupt(tmp_path, real_dir):
    data = bytearray((real_dir / "ax3_testfile.cwa").read_bytes())
    for k in range(145):
        data[1024 + k * 512 + 100] ^= 0xFF
    (tmp_path / "bad.cwa").write_bytes(data)
    with pytest.raises(cp.InputError, match="bad.cwa: none of the 145 data blocks is valid"):
        cp.read(tmp_path / "bad.cwa")


def test_csv_text_in_numeric_column(tmp_path):
    p = tmp_path / "text.csv"
    p.write_text("time,x,y,z\n2020-01-01 00:00:00.00,0,0,1\n2020-01-01 00:00:00.01,0,oops,1\n")
    with pytest.raises(cp.InputError, match=r"text.csv: column 'y' holds value 'oops' that is not a number"):
        cp.read(p)


def test_csv_empty_value_and_no_rows(tmp_path):
    p = tmp_path / "hole.csv"
    p.write_text("time,x,y,z\n2020-01-01 00:00:00.00,0,0,1\n2020-01-01 00:00:00.01,0,,1\n")
    with pytest.raises(cp.InputError, match="hole.csv: column 'y' is empty in data row 2"):
        cp.read(p)
    q = tmp_path / "header_only.csv"
    q.write_text("time,x,y,z\n")
    with pytest.raises(cp.InputError, match="header_only.csv: no data rows"):
        cp.read(q)


def test_corrupt_gzip(tmp_path, real_dir):
    import gzip

    data = gzip.compress((real_dir / "ax3_testfile.cwa").read_bytes())
    p = tmp_path / "cut.cwa.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(cp.InputError, match="cut.cwa.gz"):
        cp.read(p)


def test_input_errors_survive_pickling():
    # errors travel back from Dask workers pickled
    import pickle

    for cls in (cp.InputError, cp.UnknownFormatError):
        err = pickle.loads(pickle.dumps(cls("/data/p1.cwa", "file is empty (0 bytes)")))
        assert type(err) is cls and err.path == "/data/p1.cwa" and str(err) == "/data/p1.cwa: file is empty (0 bytes)"
