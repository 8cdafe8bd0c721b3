"""Prometheus metrics, one registry per app so that several apps can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "relay_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "relay_http_request_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=self.registry,
        )
        self.alerts_created = Counter(
            "relay_alerts_created", "Alerts committed", registry=self.registry
        )
        self.events_committed = Counter(
            "relay_events_committed", "Events committed to the log", registry=self.registry
        )
        self.write_batch_size = Histogram(
            "relay_write_batch_jobs",
            "Write jobs per group commit",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.events_delivered = Counter(
            "relay_events_delivered", "Events sent to stream subscribers", registry=self.registry
        )
        self.open_connections = Gauge(
            "relay_stream_connections", "Open websocket connections", registry=self.registry
        )
        self.delivery_lag = Histogram(
            "relay_delivery_lag_seconds",
            "From commit to hand-off to a subscriber's queue",
            registry=self.registry,
        )
