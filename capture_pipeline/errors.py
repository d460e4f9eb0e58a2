"""Exceptions raised by capture_pipeline.

Every error about an input names the file and the problem, so that a batch log line is enough to act on.
"""


class CapturePipelineError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(CapturePipelineError):
    """An input file cannot be used: empty, truncated, corrupt, of unknown format or with impossible values.

    Parameters
    ----------
    path : str or os.PathLike or None
        The file concerned (None for in-memory data).
    problem : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, path, problem):
        self.path = None if path is None else str(path)
        self.problem = problem
        where = self.path if self.path is not None else "<in-memory data>"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        # rebuild from (path, problem) so the error survives the trip back from a Dask or multiprocessing worker
        return type(self), (self.path, self.problem)


class UnknownFormatError(InputError):
    """The content of the file matches no format this package reads."""
