"""`capture-pipeline convert`: one raw file to Parquet samples."""

NAME = "convert"
HELP = "Convert a raw recording (.cwa, .cwa.gz, .csv, .csv.gz) to a Parquet file of samples with metadata and QC."


def add_arguments(p):
    p.add_argument("file", help="input recording")
    p.add_argument("--out", required=True, help="output .parquet file")
    p.add_argument("--time-mode", choices=["anchor", "reference"], default="anchor",
                   help="CWA time base: device anchors (default) or the v2.3.0 reference reader's")  # fmt: skip
    p.add_argument("--temperature-formula", choices=["ukb", "mcp9700", "skdh", "raw"], default="ukb",
                   help="CWA temperature conversion (default: UK Biobank, (raw*150-20500)/1000 °C)")  # fmt: skip
    p.add_argument("--keep-raw", action="store_true", help="also store raw temperature, light and battery (CWA)")
    p.add_argument("--units", choices=["auto", "g", "m/s2"], default="auto", help="CSV acceleration units")
    p.add_argument("--quiet", action="store_true")


def run(args) -> int:
    import capture_pipeline as cp
    from capture_pipeline.parquet_io import write_recording

    fmt = cp.detect_format(args.file)
    opts = (
        {"time_mode": args.time_mode, "temperature_formula": args.temperature_formula, "keep_raw": args.keep_raw}
        if fmt == "cwa"
        else {"units": args.units}
    )
    rec = cp.read(args.file, **opts)
    write_recording(rec, args.out)
    if not args.quiet:
        qc = rec.qc
        print(
            f"{args.file} -> {args.out}: {len(rec):,} samples, {rec.meta.get('start')} to {rec.meta.get('end')}, "
            f"{qc.get('corrupt_blocks', 0)} corrupt blocks, {qc['gap_count']} gaps, "
            f"measured rate {qc['measured_fs'] or float('nan'):.3f} Hz"
        )
    return 0
