"""Running uvicorn for the relay.

uvicorn closes open websockets with 1012 ("service restart") when it shuts down,
before the application hears of it; the contract promises 1001 ("going away"). The
protocol class below differs from uvicorn's sans-I/O websocket protocol only in that
code. It is named by import string, so every worker process loads it too.
"""

from __future__ import annotations

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

GOING_AWAY = 1001
MAX_FRAME_BYTES = 64 * 1024


class GoingAwayWebSocketProtocol(WebSocketsSansIOProtocol):
    def shutdown(self) -> None:
        if self.close_sent or not self.handshake_complete:
            super().shutdown()
            return
        self.stop_keepalive()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
        self.conn.send_close(GOING_AWAY, "server shutting down")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()


SERVER_OPTIONS: dict[str, object] = {
    "factory": True,
    "log_config": None,
    "access_log": False,
    "proxy_headers": False,
    "ws": "app.server:GoingAwayWebSocketProtocol",
    "ws_max_size": MAX_FRAME_BYTES,  # a larger frame is closed with 1009
    "ws_ping_interval": 20.0,  # ping every 20 s, drop a peer silent for 20 more
    "ws_ping_timeout": 20.0,
    # Compressing each frame per connection costs ~4x in fan-out rate and 3.5x in memory
    # here; officers' alerts are small. See docs/benchmarks.md.
    "ws_per_message_deflate": False,
    "timeout_graceful_shutdown": 5,
}


def run(*, host: str, port: int, workers: int) -> None:
    """Serve ``create_app`` with ``workers`` processes."""
    uvicorn.run("app.main:create_app", host=host, port=port, workers=workers, **SERVER_OPTIONS)  # type: ignore[arg-type]
