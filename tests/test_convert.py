"""`capture-pipeline convert` writes samples, metadata and QC to Parquet."""

import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq

import capture_pipeline as cp
from capture_pipeline.parquet_io import read_metadata
from workflows.cli import main


def test_convert_cwa(tmp_path, real_dir):
    out = tmp_path / "ax3.parquet"
    assert main(["convert", str(real_dir / "ax3_testfile_corrupt_blocks_0_13_14_142_143_144.cwa"), "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    t = pq.read_table(out)
    assert t.column_names == ["time", "x", "y", "z", "temperature"]
    rec = cp.read(real_dir / "ax3_testfile_corrupt_blocks_0_13_14_142_143_144.cwa")
    assert np.array_equal(t.column("time").to_numpy().astype(np.int64), rec.time)
    assert np.array_equal(t.column("x").to_numpy(), rec.xyz[:, 0])
    meta, qc = read_metadata(out)
    assert meta["device_id"] == 39434 and meta["metadata"]["subject_code"] == "26"
    assert qc["corrupt_block_indices"] == [0, 13, 14, 142, 143, 144] and qc["samples"] == 16680
    assert not list(tmp_path.glob("*.partial"))


def test_convert_capture24_csv_keeps_annotations(tmp_path):
    from test_read_csv import write_c24

    write_c24(tmp_path / "P001.csv.gz", compress=True)
    out = tmp_path / "P001.parquet"
    assert main(["convert", str(tmp_path / "P001.csv.gz"), "--out", str(out), "--quiet"]) == 0
    t = pq.read_table(out).to_pandas()
    assert list(t.columns) == ["time", "x", "y", "z", "annotation"]
    assert t.annotation.iloc[0] == "7030 sleeping;MET 0.95" and t.annotation.isna().sum() == 250


def test_cli_error_names_the_file(tmp_path):
    bad = tmp_path / "junk.cwa"
    bad.write_bytes(b"\x01\x02" * 100)
    r = subprocess.run([sys.executable, "-m", "workflows.cli", "convert", str(bad), "--out", str(tmp_path / "o.parquet")],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2
    assert "junk.cwa: content is neither an Axivity CWA" in r.stderr
    assert not (tmp_path / "o.parquet").exists()
