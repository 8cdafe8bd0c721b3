"""The officers' dashboard: one page; its assets are mounted at /assets by app.main."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse

router = APIRouter(include_in_schema=False)

WEB = Path(__file__).resolve().parent.parent / "web"
# Alert text comes from other administrations: the page runs only its own script.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@router.api_route("/", methods=["GET", "HEAD"])
async def dashboard() -> FileResponse:
    """The live dashboard."""
    return FileResponse(WEB / "index.html", headers=SECURITY_HEADERS)
