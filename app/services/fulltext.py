"""Full-text search over an alert's summary, narrative and concealment (the list's ``q``):
SQLite's FTS5 table ``alert_fts`` (its rowid is the alert's seq), PostgreSQL's stored
``tsvector`` under GIN (migrations 0001 and 0002). Which way a page is read is decided in
``app/services/search.py``."""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    TextClause,
    exists,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy import column as table_column
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Unprocessable
from app.models import Alert

WORD = re.compile(r"\w+", re.UNICODE)
# The FTS5 table of the initial migration; its rowid is the alert's seq.
ALERT_FTS = table("alert_fts", table_column("rowid"))
# PostgreSQL's stored document (a generated column, not in the model).
_DOCUMENT: ColumnElement[Any] = literal_column("alert.fulltext_document")
# A word's match count is reused for this long (see ``matches``).
MATCH_COUNT_SECONDS = 30.0
_MATCH_COUNTS: dict[tuple[str, int], tuple[float, int]] = {}


def words_of(q: str) -> list[str]:
    """The words of ``q``; 422 if it holds none."""
    words = WORD.findall(q)
    if not words:
        raise Unprocessable("q holds no searchable words", errors=[(("query", "q"), "no words")])
    return words


def _fts_match(words: list[str]) -> TextClause:
    # Quote every word so that user input is never parsed as FTS5 query syntax.
    match = " ".join('"' + word.replace('"', "") + '"' for word in words[:32])
    return text("alert_fts MATCH :fts_query").bindparams(fts_query=match)


def clause(dialect: str, q: str, *, look_up: bool = False) -> ColumnElement[bool]:
    """``q`` as a full-text match over summary, narrative and concealment (all words must
    match). Without ``look_up`` the matches are found in the full-text index; with it, each
    alert met in sort order is tested (SQLite: looked up in the full-text index)."""
    words = words_of(q)
    if dialect == "sqlite":
        if look_up:
            return exists().where(_fts_match(words), ALERT_FTS.c.rowid == Alert.seq)
        return Alert.seq.in_(select(ALERT_FTS.c.rowid).where(_fts_match(words)))
    # The stored tsvector of migration 0002, under a GIN index: testing an alert met in
    # sort order costs a lookup, not a parse of its texts.
    query = func.plainto_tsquery(literal_column("'english'"), " ".join(words))
    if look_up:  # the function behind @@: the same test, which no index serves
        return func.ts_match_vq(_DOCUMENT, query, type_=Boolean)
    return _DOCUMENT.op("@@")(query)


async def matches(session: AsyncSession, q: str, *, up_to: int) -> int:
    """How many alerts (of any operation) match ``q`` on SQLite, counted up to ``up_to``.

    Counting a common word's matches takes milliseconds, and the next pages of a list ask
    again: a count is reused for MATCH_COUNT_SECONDS. It only picks how a page is read;
    every way gives the same page."""
    words = words_of(q)
    key, now = (" ".join(words).lower(), up_to), time.monotonic()
    known = _MATCH_COUNTS.get(key)
    if known is not None and now - known[0] < MATCH_COUNT_SECONDS:
        return known[1]
    found = select(ALERT_FTS.c.rowid).where(_fts_match(words)).limit(up_to)
    count = (await session.execute(select(func.count()).select_from(found.subquery()))).scalar()
    if len(_MATCH_COUNTS) >= 1024:
        _MATCH_COUNTS.clear()
    _MATCH_COUNTS[key] = (now, int(count or 0))
    return int(count or 0)
