"""Per-message compression on the stream (RFC 7692): shared by default
(``RELAY_STREAM_COMPRESSION=shared``: each message is deflated once, without context
takeover, and the same frame goes to every connection that negotiated it), declined when
turned ``off``."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate

from tests.realtime.conftest import Key, Stream, World, event_frame
from tests.server import RelayServer, admin_headers

pytestmark = pytest.mark.slow

BROWSER_OFFER = "permessage-deflate; client_max_window_bits"  # what Chromium offers
CHROMIUM_ANSWER = {
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits=12",
    "client_max_window_bits=12",
}


@pytest.fixture(scope="module")
async def declining(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RelayServer]:
    async with RelayServer(
        database_url,
        tmp_path_factory.mktemp("relay-plain") / "relay.log",
        env={"RELAY_STREAM_COMPRESSION": "off"},
    ) as relay:
        yield relay


def inflate(data: bytes, bits: int) -> bytes:
    """A message deflated without context takeover, inflated as a browser may: a little
    output at a time, so that a reference further back than the agreed window fails
    (one call into a buffer big enough for it all would resolve it from the buffer)."""
    decoder, rest, out = zlib.decompressobj(-bits), data + b"\x00\x00\xff\xff", b""
    while rest:
        out += decoder.decompress(rest, 256)
        rest = decoder.unconsumed_tail
    return out


@dataclass
class RawFrame:
    deflated: bool  # RSV1
    opcode: int
    payload: bytes  # as it came over the wire


class RawStream:
    """A websocket client by hand, to see frames as the server wrote them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.extensions = ""

    @property
    def answer(self) -> tuple[str, set[str]]:
        """The extension the server accepted: its name and parameters."""
        name, *params = (part.strip() for part in self.extensions.split(";"))
        return name, set(params)

    @property
    def window_bits(self) -> int:
        """The server's window, as it answered (15 if it named none)."""
        for param in self.answer[1]:
            if param.startswith("server_max_window_bits="):
                return int(param.split("=", 1)[1])
        return 15

    @classmethod
    async def open(cls, base_url: str, key: Key, *, offer: str | None) -> RawStream:
        host, port = base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        nonce = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET /v1/stream HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {nonce}",
            "Sec-WebSocket-Version: 13",
            f"Authorization: {key.headers['Authorization']}",
        ]
        if offer is not None:
            lines.append(f"Sec-WebSocket-Extensions: {offer}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
        assert head.startswith("HTTP/1.1 101"), head
        stream = cls(reader, writer)
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                stream.extensions = value.strip()
        return stream

    async def send(self, frame: dict[str, Any]) -> None:
        payload = json.dumps(frame).encode()
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes((0x81, 0x80 | len(payload))) + mask + masked)
        await self.writer.drain()

    async def frame(self) -> RawFrame:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 5)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        assert not second & 0x80, "a server's frames are not masked"
        payload = await self.reader.readexactly(length)
        return RawFrame(bool(first & 0x40), first & 0x0F, payload)

    async def message(self) -> tuple[RawFrame, dict[str, Any]]:
        """The next text message: its frame, and its JSON (inflated if it was deflated)."""
        while True:
            frame = await self.frame()
            if frame.opcode == 0x1:
                break
            assert frame.opcode == 0x9, frame  # a ping is all else that may come
        data = frame.payload
        if frame.deflated:
            data = inflate(data, self.window_bits)  # on its own: no context takeover
        return frame, json.loads(data)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_a_browser_offering_compression_gets_one_frame_shared_by_every_connection(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    start = await world.head(ice.hk)
    streams = [
        await RawStream.open(server.base_url, key, offer=BROWSER_OFFER)
        for key in (ice.hk, ice.th, ice.hk)
    ]
    plain = await RawStream.open(server.base_url, ice.hk, offer=None)
    try:
        for stream in [*streams, plain]:
            _, welcome = await stream.message()
            assert welcome["type"] == "welcome"
            await stream.send({"type": "subscribe", "id": "s1", "operation": ice.operation})
            _, subscribed = await stream.message()
            assert subscribed["type"] == "subscribed", subscribed
        for stream in streams:
            assert stream.answer == ("permessage-deflate", CHROMIUM_ANSWER), stream.extensions
        assert plain.extensions == ""

        await world.report(ice.kr, ice.operation, narrative="Compressed twice? " * 40)
        [logged] = await world.events(ice.hk, since=start, operation=ice.operation)
        received = [await stream.message() for stream in [*streams, plain]]
    finally:
        for stream in [*streams, plain]:
            await stream.close()

    assert [message for _, message in received] == [event_frame("s1", logged)] * 4
    frames = [frame for frame, _ in received]
    assert [f.deflated for f in frames] == [True, True, True, False]
    # The same bytes for all three, and smaller than the message itself.
    assert frames[0].payload == frames[1].payload == frames[2].payload
    assert len(frames[0].payload) < len(frames[3].payload) / 2


async def test_a_websockets_client_reads_the_shared_frames_and_may_compress_its_own(
    server: RelayServer, world: World
) -> None:
    ice = await world.ice_break()
    start = await world.head(ice.hk)
    async with Stream.open(server.base_url, headers=ice.hk.headers, compression="deflate") as hk:
        [extension] = hk.ws.protocol.extensions
        assert isinstance(extension, PerMessageDeflate)
        assert extension.remote_no_context_takeover  # the server's
        # The client compresses what it sends too (its subscribe and ping here).
        await hk.subscribe("s" * 64, ice.operation, filter={"kind": ["seizure"]})
        reported = [
            await world.report(ice.kr, ice.operation, reference=f"deflated-{n}") for n in range(3)
        ]
        frames = await hk.events(3)
        await hk.send({"type": "ping"})
        assert await hk.recv() == {"type": "pong"}
    logged = await world.events(ice.hk, since=start, operation=ice.operation)
    assert [e["alert"]["id"] for e in logged] == [a["id"] for a in reported]
    assert frames == [event_frame("s" * 64, e) for e in logged]


async def test_compression_is_declined_when_it_is_turned_off(declining: RelayServer) -> None:
    async with declining.client() as client:
        world = World(client, await admin_headers(declining))
        ice = await world.ice_break()
    server = declining
    async with Stream.open(server.base_url, headers=ice.hk.headers, compression="deflate") as hk:
        assert hk.ws.protocol.extensions == []
        await hk.send({"type": "ping"})
        assert await hk.recv() == {"type": "pong"}
    raw = await RawStream.open(server.base_url, ice.hk, offer=BROWSER_OFFER)
    try:
        frame, welcome = await raw.message()
    finally:
        await raw.close()
    assert raw.extensions == "" and not frame.deflated and welcome["type"] == "welcome"


# Offers as browsers and libraries make them, and the window each answer agrees on.
OFFERS = {
    "firefox": ("permessage-deflate", 12),
    "chromium": (BROWSER_OFFER, 12),
    "small window": ("permessage-deflate; server_max_window_bits=9", 9),
    "window too small for zlib, then another": (
        "permessage-deflate; server_max_window_bits=8, permessage-deflate",
        12,
    ),
    "only a window too small": ("permessage-deflate; server_max_window_bits=8", None),
}


@pytest.mark.parametrize("offer", OFFERS)
async def test_each_offer_gets_the_window_it_allows_and_frames_that_inflate_in_it(
    server: RelayServer, world: World, offer: str
) -> None:
    header, bits = OFFERS[offer]
    ice = await world.ice_break()
    start = await world.head(ice.hk)
    stream = await RawStream.open(server.base_url, ice.hk, offer=header)
    try:
        await stream.message()
        await stream.send({"type": "subscribe", "id": "s1", "operation": ice.operation})
        await stream.message()
        # Text that repeats itself from over 4 KiB back: only the agreed window inflates it.
        narrative = " ".join(f"seal-{n:04}" for n in range(700)) * 2
        await world.report(ice.kr, ice.operation, narrative=narrative)
        frame, message = await stream.message()
    finally:
        await stream.close()
    [logged] = await world.events(ice.hk, since=start, operation=ice.operation)

    assert message == event_frame("s1", logged)
    if bits is None:
        assert stream.extensions == "" and not frame.deflated
    else:
        assert stream.answer[0] == "permessage-deflate", stream.extensions
        assert f"server_max_window_bits={bits}" in stream.answer[1], stream.extensions
        assert frame.deflated


def test_a_message_is_deflated_once_per_window_and_inflates_in_it() -> None:
    from app.server import SharedDeflate

    deflate = SharedDeflate()
    message = json.dumps({"narrative": " ".join(f"seal-{n:04}" for n in range(700)) * 2})
    raw = message.encode()
    for bits in (9, 10, 12):
        frame = deflate.frame(raw, bits)
        assert deflate.frame(raw, bits) is frame  # the same bytes for the next connection
        assert frame[0] == 0xC1 and frame[1] == 126  # FIN, RSV1, text; a 2-byte length
        assert len(frame) - 4 == int.from_bytes(frame[2:4], "big") < len(raw)
        assert inflate(frame[4:], bits) == raw
    pong = b'{"type":"pong"}'
    assert deflate.frame(pong, 12) == b"\x81" + bytes((len(pong),)) + pong  # not worth it


def test_the_cache_is_bounded_by_bytes() -> None:
    from app.server import SharedDeflate

    deflate = SharedDeflate()
    deflate.BUDGET = 10_000
    messages = [json.dumps({"n": n, "pad": "x" * 1000}).encode() for n in range(30)]
    for message in messages:
        deflate.frame(message, 12)
    assert deflate._held <= deflate.BUDGET + 2 * 1100
    assert len(deflate._frames) < len(messages)


def test_the_wire_writes_the_shared_frame_where_deflate_was_negotiated() -> None:
    """``TransportWire`` on a websockets connection that negotiated what the server
    accepts: the frame comes from the shared cache, and websockets frames nothing."""
    from types import SimpleNamespace

    from websockets.datastructures import Headers
    from websockets.http11 import Request
    from websockets.server import ServerProtocol

    from app.server import DEFLATE_EXTENSIONS, SHARED_DEFLATE, TransportWire

    def connection(offer: str | None) -> ServerProtocol:
        conn = ServerProtocol(extensions=DEFLATE_EXTENSIONS)
        headers = Headers(
            Host="relay.test",
            Upgrade="websocket",
            Connection="Upgrade",
            **{"Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()},
            **{"Sec-WebSocket-Version": "13"},
        )
        if offer is not None:
            headers["Sec-WebSocket-Extensions"] = offer
        conn.send_response(conn.accept(Request("/v1/stream", headers)))
        conn.data_to_send()
        return conn

    class Transport:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.written.append(data)

    message = json.dumps({"type": "event", "note": os.urandom(8).hex() * 20}).encode()
    for offer, deflated in ((BROWSER_OFFER, True), (None, False)):
        conn, transport = connection(offer), Transport()
        wire = TransportWire(SimpleNamespace(conn=conn, transport=transport))  # type: ignore[arg-type]
        wire.write([message, message])
        assert conn.data_to_send() == []
        [written] = transport.written
        if deflated:
            frame = SHARED_DEFLATE._frames[(12, message)]
            assert written == frame + frame
        else:
            assert written == (bytes((0x81, 126)) + len(message).to_bytes(2, "big") + message) * 2
