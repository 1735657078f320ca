"""One error family, so the CLI can print any of them as one line that names the fix."""


class AdvXAIError(ValueError):
    """Base class: its message is one line saying what is wrong and how to fix it."""


class DataError(AdvXAIError):
    """Missing, corrupt or malformed data."""


class UnknownNameError(AdvXAIError, KeyError):
    """A dataset, model, attack, explainer or stage name that no registry knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0] if self.args else ""


class ParameterError(AdvXAIError):
    """A parameter out of its range or of the wrong shape."""
