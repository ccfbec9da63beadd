"""A typed Python client for ``vectorseam serve``: the facade's search API over HTTP, sync and async.

Change one line to move code from an embedded store to a remote service::

    vs = VectorSeam()                                            # in process
    vs = RemoteVectorSeam("http://search:8000", api_key="vs_...")  # the same calls, over HTTP

Both satisfy :class:`vectorseam.api.VectorSeamAPI`; the framework integrations take either.
"""

from __future__ import annotations

from vectorseam.remote.aclient import AsyncRemoteVectorSeam
from vectorseam.remote.calls import RemoteAuthError, RemoteServerError
from vectorseam.remote.client import RemoteVectorSeam
from vectorseam.remote.embedder import RemoteEmbedder
from vectorseam.remote.transport import AsyncRetryTransport, RetryTransport

__all__ = [
    "AsyncRemoteVectorSeam",
    "AsyncRetryTransport",
    "RemoteAuthError",
    "RemoteEmbedder",
    "RemoteServerError",
    "RemoteVectorSeam",
    "RetryTransport",
]
