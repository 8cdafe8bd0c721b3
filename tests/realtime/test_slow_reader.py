"""A reader that falls behind (API.md section 8, item 5): closed with 4008 and the last
``seq`` it was sent; other readers are not held up; it resumes from that ``seq`` and
loses nothing."""

from __future__ import annotations

import contextlib
import re
import secrets

import pytest

from tests.realtime.conftest import Stream, World, event_frame, seqs, small_buffer_socket
from tests.server import RelayServer

pytestmark = pytest.mark.slow

# The server queues at most 1000 frames per connection. The slow reader subscribes to one
# operation SUBSCRIPTIONS times, so each alert queues that many frames for it; with 20 kB
# narratives, ALERTS alerts also overflow the kernel's socket buffers (a few MB at most).
# The narrative is random words, so that a compressed stream's frames stay large too.
SUBSCRIPTIONS = 30
ALERTS = 70
NARRATIVE = " ".join(secrets.token_urlsafe(9) for _ in range(1500))  # 19,499 characters


def unread_stream(
    server: RelayServer, headers: dict[str, str], compression: str | None
) -> contextlib.AbstractAsyncContextManager[Stream]:
    """A stream that reads one frame ahead at most, over a socket whose receive buffer
    cannot grow: when the test stops reading, the server soon finds its socket full.
    ``compression=None`` keeps the bytes as large on the wire as they are."""
    return Stream.open(
        server.base_url,
        headers=headers,
        sock=small_buffer_socket(server.base_url),
        max_queue=1,
        compression=compression,
    )


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_slow_reader_is_closed_with_4008_and_resumes_from_its_last_seq(
    server: RelayServer, world: World, compression: str | None
) -> None:
    ice = await world.ice_break()
    start = await world.head(ice.hk)
    async with (
        unread_stream(server, ice.hk.headers, compression) as slow,
        Stream.open(server.base_url, headers=ice.th.headers) as steady,
    ):
        assert bool(slow.ws.protocol.extensions) == (compression is not None)
        for n in range(SUBSCRIPTIONS):
            await slow.subscribe(f"s{n:02}", ice.operation)
        await steady.subscribe("steady", ice.operation)
        steady_frames = []
        for n in range(ALERTS):
            await world.report(ice.kr, ice.operation, narrative=NARRATIVE, reference=f"slow-{n}")
            steady_frames += await steady.events(1)
        # Only now does the slow reader read: what was sent before the close, then the close.
        closed = await slow.closed(within=30)

    logged = await world.events(ice.hk, since=start, operation=ice.operation)
    assert len(logged) == ALERTS
    assert steady_frames == [event_frame("steady", e) for e in logged]

    assert closed.code == 4008, closed.code
    match = re.search(r"last seq (\d+)", closed.reason)
    assert match, closed.reason
    last_seq = int(match.group(1))
    assert start < last_seq < logged[-1]["seq"], "the reader was not cut off mid-stream"
    # The seq is one up to which EVERY subscription was sent every event (so resuming each
    # from it loses nothing); a few later events may have gone out on some subscriptions,
    # and resuming sends them again (the client drops them by seq).
    assert last_seq <= max(seqs(closed.frames)) <= last_seq + 1
    for n in range(SUBSCRIPTIONS):
        sub = f"s{n:02}"
        sent = [f for f in closed.frames if f["sub"] == sub and f["event"]["seq"] <= last_seq]
        assert sent == [event_frame(sub, e) for e in logged if e["seq"] <= last_seq], sub

    async with Stream.open(server.base_url, headers=ice.hk.headers) as resumed:
        await resumed.subscribe("again", ice.operation, since=last_seq)
        rest = [e for e in logged if e["seq"] > last_seq]
        frames = await resumed.events(len(rest))
        await resumed.quiet(0.3)
    assert frames == [event_frame("again", e) for e in rest]


async def test_a_reader_whose_own_answers_overflow_its_queue_is_closed_with_4008(
    server: RelayServer, world: World
) -> None:
    """The server's answers to a client's own frames (pongs, errors) queue like events: a
    client that sends and never reads is closed with 4008 too, by the same rule, and the
    other connections go on."""
    ice = await world.ice_break()
    # Error frames that echo a 50 kB id (an unsubscribe's id has no length bound; a
    # subscribe's has) fill the socket buffers (4 MB at most here: tcp_wmem), and those
    # that do not fit wait in the connection's queue of at most 1000 frames, where each
    # ping's pong then joins them until one finds it full.
    unknown = "x" * 50_000
    errors = 400
    async with (
        unread_stream(server, ice.hk.headers, None) as chatty,
        Stream.open(server.base_url, headers=ice.th.headers) as steady,
    ):
        await steady.subscribe("steady", ice.operation)
        for _ in range(errors):
            await chatty.send({"type": "unsubscribe", "id": unknown})
        for _ in range(1100):
            await chatty.send({"type": "ping"})
        reported = await world.report(ice.kr, ice.operation, reference="after the flood")
        [delivered] = await steady.events(1)
        closed = await chatty.closed(within=30)

    assert delivered["event"]["alert"]["id"] == reported["id"]
    assert closed.code == 4008, (closed.code, closed.reason)
    # It was sent no event: every subscription it opens again starts from where it asks.
    assert re.search(r"last seq 0$", closed.reason), closed.reason
    # What reached it before the close: errors only, and not all of them; the queued rest
    # and every pong were dropped with the connection.
    assert {frame["type"] for frame in closed.frames} == {"error"}
    assert len(closed.frames) < errors
