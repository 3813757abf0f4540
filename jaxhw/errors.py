"""The one exception type for bad input: the CLIs turn it into one line on stderr and exit code 2."""


class InputError(ValueError):
    """Raised when an argument or a piece of data is not what jaxhw expects; the message says both."""
