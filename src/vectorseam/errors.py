"""Error types.

Every error a user can cause derives from :class:`VectorseamError` so that the CLI and the HTTP
service can turn it into a clear message (and a non-zero exit or a 4xx) instead of a traceback.
Messages say what was wrong, where (record id, field, file:line) and what to do.
"""

from __future__ import annotations


class VectorseamError(Exception):
    """Base class of every error vectorseam raises on purpose."""


class ConfigError(VectorseamError):
    """The configuration names something that does not exist or cannot work."""


class MissingExtraError(ConfigError):
    """A feature needs an optional part of vectorseam (an extra) that is not installed; the message
    names the ``pip install`` to run (see :mod:`vectorseam.extras`)."""


class ValidationError(VectorseamError, ValueError):
    """Input (a record, a vector, a row, a query) is malformed; nothing was written."""


class FilterError(ValidationError):
    """A metadata filter is malformed, or uses an operator the backend cannot express."""


class DimensionMismatchError(ValidationError):
    """A vector's length differs from the collection's dimension."""


class CollectionNotFoundError(VectorseamError, KeyError):
    """The named collection does not exist in the store."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "collection not found"


class CollectionDamagedError(VectorseamError):
    """The collection's files are damaged: it is not served (other collections are) until
    ``vectorseam doctor`` recovers it. Not transient: retrying cannot help."""


class EmbedderMismatchError(VectorseamError):
    """The collection was built with another embedder than the one configured now."""


class UnsupportedOperationError(VectorseamError):
    """The backend cannot do what was asked; raised instead of silently doing something else."""


class StoreUnavailableError(VectorseamError):
    """The backend could not be reached (after retries)."""


class EmbeddingError(VectorseamError):
    """The embedder failed (e.g. the embedding endpoint rejected the input or stayed down)."""
