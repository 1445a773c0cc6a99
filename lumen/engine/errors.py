"""Errors the engine raises on purpose; each carries a message fit to show a user as it is."""


class LumenError(Exception):
    """Base of every error meant for the user's eyes."""


class SpecError(LumenError):
    """A model spec is malformed or does not fit together; ``node`` names the culprit if there is one."""

    def __init__(self, reason: str, node: str | None = None):
        self.node = node
        self.reason = reason
        super().__init__(f"{node}: {reason}" if node else reason)


class DataError(LumenError):
    """Input data (a dataset, an image, a weights file) cannot be used."""
