"""The HTTP service: ``vectorseam serve``, or ``create_app(VectorSeam())`` inside another ASGI server."""

from vectorseam.service.app import create_app

__all__ = ["create_app"]
