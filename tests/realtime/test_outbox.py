"""A connection's outbox and the wire it drains into (app/realtime/outbox.py): frames leave
once per turn of the event loop, in order, in one write per connection; they wait, bounded,
while the transport pushes back; nothing leaves once the connection is being closed. Under
a server that offers no wire, they go through ASGI, still in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.websockets import WebSocketState

from app.realtime.outbox import FLUSH_SLICE, Flusher, Outbox
from app.server import text_frame_header
from app.services.stream import AsgiWire


class FakeWire:
    """A transport that records each write and pushes back when told to."""

    def __init__(self) -> None:
        self.writes: list[list[bytes]] = []
        self.open = True
        self._callback: Callable[[], None] | None = None

    def writable(self) -> bool:
        return self.open

    def write(self, messages: list[bytes]) -> None:
        self.writes.append(list(messages))

    def on_writable(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    def push_back(self) -> None:
        self.open = False

    def let_go(self) -> None:
        self.open = True
        assert self._callback is not None
        self._callback()

    @property
    def sent(self) -> list[bytes]:
        return [message for write in self.writes for message in write]


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_frames_queued_in_one_turn_leave_in_one_write_in_order() -> None:
    wire, flusher, counted = FakeWire(), Flusher(), []
    flusher.on_sent = counted.append
    outbox = Outbox(10, wire, flusher)
    assert outbox.push("welcome")
    for seq in (1, 2, 3):
        assert outbox.push(f"event {seq}".encode(), seq)
    assert wire.writes == []  # nothing is written while dispatch runs
    await next_turn()
    assert wire.writes == [[b"welcome", b"event 1", b"event 2", b"event 3"]]
    assert outbox.sent_seq == 3
    assert counted == [3]  # events only, not the welcome


async def test_frames_wait_while_the_transport_pushes_back_and_leave_when_it_lets_go() -> None:
    wire = FakeWire()
    outbox = Outbox(10, wire, Flusher())
    wire.push_back()
    for seq in (1, 2):
        outbox.push(b"e%d" % seq, seq)
    await next_turn()
    assert wire.writes == []
    assert outbox.sent_seq == 0
    assert outbox.lowest_seq() == 1
    wire.let_go()
    await next_turn()
    assert wire.sent == [b"e1", b"e2"]
    assert outbox.sent_seq == 2
    assert outbox.lowest_seq() is None


async def test_a_full_outbox_refuses_at_once() -> None:
    wire = FakeWire()
    wire.push_back()
    outbox = Outbox(3, wire, Flusher())
    assert [outbox.push(b"e", seq) for seq in (1, 2, 3, 4)] == [True, True, True, False]
    assert len(outbox) == 3


async def test_nothing_queued_leaves_once_the_outbox_is_closed() -> None:
    wire = FakeWire()
    outbox = Outbox(10, wire, Flusher())
    outbox.push(b"e1", 1)
    outbox.close()
    outbox.push(b"e2", 2)
    await next_turn()
    assert wire.writes == []


async def test_a_paced_replay_waits_for_the_reader_then_goes_on() -> None:
    wire = FakeWire()
    wire.push_back()
    outbox = Outbox(4, wire, Flusher())
    for seq in (1, 2, 3):
        outbox.push(b"e%d" % seq, seq)
    replay = asyncio.create_task(outbox.push_paced(b"e4", 4))
    await next_turn()
    assert not replay.done()  # more than half full: the replay waits
    wire.let_go()
    await asyncio.wait_for(replay, 1)
    await next_turn()
    assert wire.sent == [b"e1", b"e2", b"e3", b"e4"]


def test_text_frame_headers_carry_the_length_as_rfc_6455_says() -> None:
    assert text_frame_header(5) == b"\x81\x05"
    assert text_frame_header(125) == b"\x81\x7d"
    assert text_frame_header(126) == b"\x81\x7e\x00\x7e"
    assert text_frame_header(65535) == b"\x81\x7e\xff\xff"
    assert text_frame_header(65536) == b"\x81\x7f" + (65536).to_bytes(8, "big")


class SlowWebSocket:
    """What AsgiWire uses of a Starlette WebSocket; each send takes a turn of the loop."""

    application_state = WebSocketState.CONNECTED

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, text: str) -> None:
        await asyncio.sleep(0)
        self.sent.append(text)


async def test_without_a_wire_from_the_server_frames_go_through_asgi_in_order() -> None:
    websocket = SlowWebSocket()
    outbox = Outbox(10, AsgiWire(websocket), Flusher())
    outbox.push("welcome")
    outbox.push(b"e1", 1)
    await next_turn()  # the first two are being sent: what comes now waits for them
    outbox.push(b"e2", 2)
    for _ in range(10):
        await next_turn()
    assert websocket.sent == ["welcome", "e1", "e2"]
    assert outbox.sent_seq == 2


async def test_a_pass_over_many_connections_lets_the_loop_run_between_slices() -> None:
    flusher = Flusher()
    wires = [FakeWire() for _ in range(FLUSH_SLICE * 2 + 1)]
    for wire in wires:
        Outbox(10, wire, flusher).push(b"e1", 1)
    await asyncio.sleep(0)  # one turn: one slice
    assert sum(bool(wire.writes) for wire in wires) == FLUSH_SLICE
    for _ in range(3):
        await asyncio.sleep(0)
    assert all(wire.sent == [b"e1"] for wire in wires)
