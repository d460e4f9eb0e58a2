"""`capture-pipeline convert`: one raw file to Parquet samples."""

NAME = "convert"
HELP = ("Convert a raw recording (.cwa, .cwa.gz, .csv, .csv.gz, GENEActiv .bin, ActiGraph .gt3x) to a Parquet file of "
        "samples with metadata and QC.")  # fmt: skip


def add_arguments(p):
    p.add_argument("file", help="input recording")
    p.add_argument("--out", required=True, help="output .parquet file")
    p.add_argument("--time-mode", choices=["anchor", "reference"], default="anchor",
                   help="CWA time base: device anchors (default) or the v2.3.0 reference reader's")  # fmt: skip
    p.add_argument("--temperature-formula", choices=["ukb", "mcp9700", "skdh", "raw"], default="ukb",
                   help="CWA temperature conversion (default: UK Biobank, (raw*150-20500)/1000 °C)")  # fmt: skip
    p.add_argument("--keep-raw", action="store_true", help="also store raw temperature, light and battery (CWA)")
    p.add_argument("--units", choices=["auto", "g", "m/s2"], default="auto", help="CSV acceleration units")
    p.add_argument("--no-idle-sleep-fill", action="store_true",
                   help=".gt3x: leave idle-sleep periods as gaps, not filled with the last sample")  # fmt: skip
    p.add_argument("--timezone", metavar="ZONE", default=None,
                   help="IANA zone the device was worn in (e.g. Europe/London): adds time_utc and time_local columns; "
                        "default: naive device time only")  # fmt: skip
    p.add_argument("--clock", choices=["fixed", "wall"], default="fixed",
                   help="with --timezone: the device clock keeps one UTC offset (fixed: devices; the offset recorded "
                        "in the file if any) or follows daylight saving (wall: e.g. some CSV exports)")  # fmt: skip
    p.add_argument("--quiet", action="store_true")


def reader_options(fmt, args) -> dict:
    """Options for `capture_pipeline.read` from the command-line arguments, for the detected format."""
    if fmt == "cwa":
        return {"time_mode": args.time_mode, "temperature_formula": args.temperature_formula, "keep_raw": args.keep_raw}
    if fmt == "csv":
        return {"units": args.units}
    if fmt == "gt3x":
        return {"fill_idle_sleep": not args.no_idle_sleep_fill}
    return {}


def run(args) -> int:
    import capture_pipeline as cp
    from capture_pipeline.parquet_io import recording_table, write_recording, write_table_atomic

    if args.timezone:  # fail on a bad zone name before reading a large file
        from capture_pipeline.timezone import get_zone

        get_zone(args.timezone)
    fmt = cp.detect_format(args.file)
    rec = cp.read(args.file, **reader_options(fmt, args))
    if args.timezone:
        import pyarrow as pa

        from capture_pipeline.timezone import localise_recording

        utc, _, tz_qc = localise_recording(rec, args.timezone, clock=args.clock)
        rec.meta["timezone"] = tz_qc
        table = recording_table(rec)
        table = table.append_column("time_utc", pa.array(utc, type=pa.timestamp("ns", tz="UTC")))
        # same instants, annotated with the zone: readers (pandas, R arrow) show local wall-clock time
        table = table.append_column("time_local", pa.array(utc, type=pa.timestamp("ns", tz=args.timezone)))
        write_table_atomic(table, args.out, compression="zstd")
    else:
        write_recording(rec, args.out)
    if not args.quiet:
        qc = rec.qc
        bad = qc.get("corrupt_blocks", qc.get("corrupt_pages", qc.get("corrupt_records", 0)))
        print(
            f"{args.file} -> {args.out}: {len(rec):,} samples, {rec.meta.get('start')} to {rec.meta.get('end')}, "
            f"{bad} corrupt blocks/pages/records, {qc['gap_count']} gaps, "
            f"measured rate {qc['measured_fs'] or float('nan'):.3f} Hz"
        )
        if args.timezone:
            tz = rec.meta["timezone"]
            print(f"  time zone {args.timezone} ({args.clock} clock, offset {tz['clock_offset_s']} s from "
                  f"{tz['clock_offset_source']}): {len(tz['dst_transitions'])} DST changes, "
                  f"{tz['ambiguous_samples']} ambiguous and {tz['nonexistent_samples']} non-existent "
                  "local times")  # fmt: skip
    return 0
