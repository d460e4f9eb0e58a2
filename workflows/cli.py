"""The `capture-pipeline` entry point: discovers the subcommands in `workflows.commands`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from capture_pipeline import __version__
from capture_pipeline.errors import CapturePipelineError

from . import commands


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per command module."""
    parser = argparse.ArgumentParser(
        prog="capture-pipeline",
        description="Raw wrist accelerometer files to features, activity models and reports.",
    )
    parser.add_argument("--version", action="version", version=f"capture-pipeline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns (and, as a script, exits with) the command's exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except CapturePipelineError as exc:
        print(f"capture-pipeline {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
