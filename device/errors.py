"""Errors the device runtime raises; each message says what was wrong and what to do.

They belong to the one tree in :mod:`edgesplit.errors`.
"""

from edgesplit.errors import EdgesplitError, InputError, ModelError, ToolMissingError

__all__ = ["EdgesplitError", "ModelFileError", "ModelInputError", "ToolMissingError"]


class ModelFileError(ModelError):
    """A model file is missing, unreadable or not a valid ONNX model."""


class ModelInputError(InputError):
    """An input does not match the model's declared name, shape or element type."""
