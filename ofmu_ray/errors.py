"""The errors a person can fix: the CLI prints each on one line and exits with status 2.

Everything else (a bug, a worker that died) keeps its traceback.
"""


class UserError(ValueError):
    """Base of the errors that name what to change: an argument, a file, a cache folder."""


class UsageError(UserError):
    """A bad argument or option."""


class DataError(UserError):
    """Data that cannot be read, or a split or column that is not there."""


class CacheError(UserError):
    """A prepared benchmark whose files are not the ones it was published with (truncated, altered or
    missing); the message names the file and the command that rebuilds the folder."""
