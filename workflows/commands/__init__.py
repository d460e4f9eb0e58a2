"""One module per `capture-pipeline` subcommand.

Each module defines ``NAME`` (the subcommand), ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int`` (the exit code). `workflows.cli` discovers them, so adding a subcommand means adding a module.
Modules import heavy dependencies (torch, dask) inside ``run`` so that ``--help`` stays fast.
"""
