"""Errors that map to HTTP statuses; the body is OIP's ``{"error": message}``."""

from edgesplit.errors import CloudError, ConfigError


class OipError(CloudError):
    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFound(OipError):
    status = 404


class Overloaded(OipError):
    """The model's queue is full: 429 with Retry-After."""

    status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InferenceTimeout(OipError):
    status = 504


class ModelConfigError(ConfigError):
    """A model repository entry is malformed; the message names the file, field and value."""


class TooLarge(OipError):
    """A declared size over a limit: 413, answered before the body is read."""

    status = 413


class Unavailable(OipError):
    """Loading, or draining and this work will not be reached: 503."""

    status = 503


class ReadTimeout(OipError):
    """Headers or body did not arrive in time (slow client): 408."""

    status = 408


class ClientClosed(Exception):
    """The client went away mid-request: counted as 499 (nginx's "client closed request")."""
