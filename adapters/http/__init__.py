"""HTTP: the staff JSON API (``/api/v1``), ``/healthz`` and ``/metrics``, on FastAPI (see :mod:`adapters.http.app`)."""

from __future__ import annotations

from adapters.http.app import create_app

__all__ = ["create_app"]
