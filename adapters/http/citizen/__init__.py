"""The citizen's pages: rate from a scanned QR code, track a case (DESIGN §1, §7, §9)."""

from pathlib import Path

from adapters.http.citizen.pages import CitizenPages, router

#: The pages' stylesheet, served under ``/static/citizen``.
STATIC = Path(__file__).parent / "static"

__all__ = ["STATIC", "CitizenPages", "router"]
