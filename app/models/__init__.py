"""ORM models; importing this package registers every table on ``Base.metadata``."""

from app.models.administration import Administration
from app.models.alert import (
    Ack,
    Alert,
    AlertConcealment,
    AlertIdentifier,
    AlertItem,
    AlertRecipient,
    Comment,
)
from app.models.api_key import ApiKey
from app.models.audit import AuditRecord
from app.models.base import Base
from app.models.event import Event, EventCounter
from app.models.idempotency import IdempotencyRecord
from app.models.operation import Operation, Participation
from app.models.stat_rollup import StatRollup

__all__ = [
    "Ack",
    "Administration",
    "Alert",
    "AlertConcealment",
    "AlertIdentifier",
    "AlertItem",
    "AlertRecipient",
    "ApiKey",
    "AuditRecord",
    "Base",
    "Comment",
    "Event",
    "EventCounter",
    "IdempotencyRecord",
    "Operation",
    "Participation",
    "StatRollup",
]
