"""Errors raised when a model artifact cannot be trusted or loaded; each message says what to do."""


class ModelError(Exception):
    """Base class: the model artifact cannot be used."""


class ModelNotFoundError(ModelError):
    """A model file (joblib, onnx or card) is missing."""


class ModelCorruptError(ModelError):
    """A model file exists but cannot be parsed or has the wrong shape."""


class ModelIntegrityError(ModelError):
    """The artifact does not match its card (hash, feature order): it is never unpickled."""


class ModelVersionMismatchError(ModelError):
    """The artifact was written by library versions this environment cannot load safely."""
