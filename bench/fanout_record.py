"""What the subscriber processes of ``bench.fanout`` (bench/fanout_clients.py) record:
latency histograms per phase, and per connection which events it received, so
duplicates, out-of-order and unaccepted deliveries are counted.

Every alert carries ``bench-ts:<phase>:<unix time it was due>:<serial>`` (in the relay's
``reference`` field, verbatim in the peers' payloads); a connection finds it with one
bytes search, without parsing the JSON, and files the latency under that phase.

Each connection also checks what it receives. An event is identified by its ``seq`` on
the relay (the peers repeat one payload, so there by the publisher's serial number): a
second delivery of one to the same connection is a *duplicate* and does not count as
delivered; one that arrives after a higher one (``seq`` on the relay, serial on the
peers) still counts as delivered, and also as *out of order*. Deliveries are counted per
serial, so the parent can tell alerts the publisher saw accepted from alerts the server
committed although the publisher did not hear so (answered too late, cancelled at the
phase's time limit, or refused)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MARKER = b"bench-ts:"
SEQ = b'"seq":'
FINE_BUCKETS = 20_000  # 0.1 ms buckets up to 2 s
COARSE_BUCKETS = 11_800  # then 10 ms buckets up to 120 s
BUCKETS = FINE_BUCKETS + COARSE_BUCKETS


def bucket_of(latency: float) -> int:
    ms = latency * 1000.0
    if ms < 2000.0:
        return int(ms * 10.0) if ms > 0.0 else 0
    return FINE_BUCKETS + min(int((ms - 2000.0) / 10.0), COARSE_BUCKETS - 1)


def bucket_ms(index: int) -> float:
    """The upper edge of a bucket, in milliseconds."""
    if index < FINE_BUCKETS:
        return (index + 1) / 10.0
    return 2000.0 + (index - FINE_BUCKETS + 1) * 10.0


def percentile_ms(buckets: list[int], q: float) -> float:
    total = sum(buckets)
    if not total:
        return float("nan")
    rank = max(1, int(q * total + 0.5))
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return bucket_ms(index)
    return bucket_ms(BUCKETS - 1)


@dataclass(slots=True)
class PhaseStats:
    count: int = 0  # deliveries, less duplicates
    first: float = 0.0
    last: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    duplicates: int = 0  # an event this connection had already received
    out_of_order: int = 0  # an event below one this connection had (seq, or serial on peers)
    by_serial: Counter[int] = field(default_factory=Counter)


@dataclass(slots=True)
class Seen:
    """What one connection has received: a bitmap of event ids, and the highest."""

    ids: bytearray = field(default_factory=bytearray)
    highest: int = -1

    def first_time(self, ident: int) -> bool:
        ids = self.ids
        if ident >= len(ids):
            ids.extend(bytes(max(ident + 1 - len(ids), 256)))
        elif ids[ident]:
            return False
        ids[ident] = 1
        return True


@dataclass(slots=True)
class Recorder:
    """What this process's connections received, per phase."""

    phases: dict[int, PhaseStats] = field(default_factory=dict)
    closes: Counter[int] = field(default_factory=Counter)
    protocol_errors: Counter[str] = field(default_factory=Counter)
    ready: int = 0
    lost: int = 0

    def record(
        self, data: bytes | bytearray, begin: int, end: int, now: float, seen: Seen, by_seq: bool
    ) -> bool:
        """File the message ``data[begin:end]`` if it carries a stamp (it is not copied)."""
        start = data.find(MARKER, begin, end)
        if start < 0:
            return False
        start += len(MARKER)
        colon = data.find(b":", start, end)
        second = data.find(b":", colon + 1, end)
        close = data.find(b'"', second, end)
        if colon < 0 or second < 0 or close < 0:
            return False
        phase = int(data[start:colon])
        serial = int(data[second + 1 : close])
        stats = self.phases.get(phase)
        if stats is None:
            stats = self.phases[phase] = PhaseStats(first=now)
        ident = serial
        if by_seq:  # the relay's frame: the event's own seq comes first in it
            at = data.find(SEQ, begin, end) + len(SEQ)
            ident = int(data[at : data.find(b",", at, end)])
        if not seen.first_time(ident):
            stats.duplicates += 1
            return True
        if ident < seen.highest:  # still a delivery, but against the contract's order
            stats.out_of_order += 1
        else:
            seen.highest = ident
        stats.count += 1
        stats.last = now
        by_serial = stats.by_serial
        by_serial[serial] = by_serial.get(serial, 0) + 1
        latency = now - float(data[colon + 1 : second])
        # bucket_of's common case inline: this runs once per delivery
        stats.buckets[int(latency * 1e4) if 0.0 < latency < 2.0 else bucket_of(latency)] += 1
        return True
