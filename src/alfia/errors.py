"""One exception type for bad input, so the CLI can print it as one clear line and exit non-zero."""


class AlfiaError(Exception):
    """Bad input or a refused operation. The message names the file, row or column at fault."""


class LeakageError(AlfiaError):
    """A column carries outcome or post-window information."""
