"""jaxhw's exception types: the CLIs turn each into one line on stderr and a non-zero exit code."""


class InputError(ValueError):
    """An argument or a piece of data is not what jaxhw expects; the message says both (exit code 2)."""


class ResourceError(RuntimeError):
    """The machine refused what a run needed: disk space, a permission, memory; the message names the path or
    the size (exit code 1)."""
