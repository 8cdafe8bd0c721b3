"""The live stream (API.md section 8); the protocol lives in app/services/stream.py."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from app.deps import RuntimeDep
from app.services import stream

router = APIRouter(tags=["stream"])


@router.websocket("/v1/stream")
async def live_stream(websocket: WebSocket, runtime: RuntimeDep) -> None:
    """Subscribe to operations and receive their visible events live, resuming from ``since``."""
    await stream.serve(websocket, runtime.stream)
