"""Property: every read path shows each administration exactly what API.md section 3 allows.

Hypothesis builds a world (administrations, some sharing a territory; one or two operations
with a coordinator and participants) and a sequence of reports, participant removals and
additions, widening amendments and withdrawals. The test plays it through the HTTP API while a
plain model of the rule runs alongside, then checks for every administration that
``GET /v1/alerts/{id}``, ``GET /v1/operations/{code}/alerts``, ``GET /v1/events``, the
statistics (read from the figures ``stat_rollup`` keeps added up) and the export agree with
the model, and that the Python form of the rule (``Reach.may_see``) agrees with the SQL form
the HTTP reads use.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings, target
from hypothesis import strategies as st
from sqlalchemy import select

from app.models import Administration, Alert, AlertRecipient
from app.services.visibility import reach_of
from tests.api import ADMIN, Api, assert_problem
from tests.conftest import reset

HOME_TERRITORIES = ("KR", "HK", "TH", "MY")
ROUTE_TERRITORIES = (*HOME_TERRITORIES, "CN", "VN")
# The first two are the same instant, so sorting by occurred_at has ties to break.
OCCURRED_AT = ("2020-06-17T00:30:00Z", "2020-06-17T09:30:00+09:00", "2020-06-18T12:00:00Z")
SORTS = ("-occurred_at", "occurred_at", "-seq", "seq")
MIN_DISCRIMINATING_SHARE = 0.25
EXAMPLE_NUMBERS = itertools.count(1)


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    origin: str | None
    transit: tuple[str, ...]
    destination: str

    def territories(self) -> set[str]:
        return {t for t in (self.origin, self.destination, *self.transit) if t is not None}

    def as_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "transit": list(self.transit),
            "destination": self.destination,
        }


@dataclass(frozen=True)
class Report:
    operation: str
    reporter: str
    kind: str
    restricted: bool
    recipients: tuple[str, ...]
    route: Route | None
    occurred_at: str


@dataclass(frozen=True)
class Amend:
    alert: int
    widen_to_operation: bool
    extra_recipients: tuple[str, ...]
    route: Route | None


@dataclass(frozen=True)
class Withdraw:
    alert: int


@dataclass(frozen=True)
class RemoveParticipant:
    operation: str
    administration: str


@dataclass(frozen=True)
class AddParticipant:
    operation: str
    administration: str


Action = Report | Amend | Withdraw | RemoveParticipant | AddParticipant


@dataclass
class OperationModel:
    coordinator: str
    participants: set[str]
    took_part: set[str]

    def members(self) -> list[str]:
        """Who may report to it, and who may be named a recipient."""
        return sorted(self.participants | {self.coordinator})


@dataclass
class AlertModel:
    operation: str
    reporter: str
    kind: str
    restricted: bool
    recipients: set[str]
    route: Route | None
    occurred_at: datetime
    events: list[str] = field(default_factory=lambda: ["alert.created"])
    withdrawn: bool = False


@dataclass
class World:
    """Rule 3 in plain Python, over the state the actions leave behind."""

    territory: dict[str, str]
    operations: dict[str, OperationModel]
    alerts: list[AlertModel] = field(default_factory=list)

    def apply(self, action: Action) -> None:
        if isinstance(action, Report):
            alert = AlertModel(
                operation=action.operation,
                reporter=action.reporter,
                kind=action.kind,
                restricted=action.restricted,
                recipients=set(action.recipients) if action.restricted else set(),
                route=action.route,
                occurred_at=datetime.fromisoformat(action.occurred_at),
            )
            self._target_route(alert)
            self.alerts.append(alert)
        elif isinstance(action, Amend):
            alert = self.alerts[action.alert]
            if action.widen_to_operation:
                alert.restricted, alert.recipients = False, set()
            elif alert.restricted:
                alert.recipients |= set(action.extra_recipients)
            alert.route = action.route or alert.route
            self._target_route(alert)
            alert.events.append("alert.amended")
        elif isinstance(action, Withdraw):
            self.alerts[action.alert].withdrawn = True
            self.alerts[action.alert].events.append("alert.withdrawn")
        elif isinstance(action, RemoveParticipant):
            self.operations[action.operation].participants.discard(action.administration)
        else:
            op = self.operations[action.operation]
            op.participants.add(action.administration)
            op.took_part.add(action.administration)

    def _target_route(self, alert: AlertModel) -> None:
        """A restricted pre-alert reaches every current participant on its route."""
        if alert.kind == "pre_alert" and alert.restricted and alert.route is not None:
            on_route = alert.route.territories()
            current = self.operations[alert.operation].participants
            alert.recipients |= {p for p in current if self.territory[p] in on_route}

    def sees(self, administration: str, alert: AlertModel) -> bool:
        op = self.operations[alert.operation]
        if administration in (alert.reporter, op.coordinator):
            return True
        if administration not in op.participants:
            return False
        return not alert.restricted or administration in alert.recipients

    def visible(self, administration: str, operation: str | None = None) -> set[int]:
        return {
            index
            for index, alert in enumerate(self.alerts)
            if self.sees(administration, alert) and operation in (None, alert.operation)
        }

    def may_open(self, administration: str, operation: str) -> bool:
        op = self.operations[operation]
        return administration == op.coordinator or administration in op.took_part

    def changeable(self) -> list[int]:
        """Open alerts whose reporter still takes part in (or coordinates) the operation."""
        return [
            index
            for index, alert in enumerate(self.alerts)
            if not alert.withdrawn and alert.reporter in self.operations[alert.operation].members()
        ]

    def hidden_from_participants(self) -> int:
        """(current participant, alert) pairs of one operation where the alert is hidden."""
        return sum(
            not self.sees(participant, alert)
            for alert in self.alerts
            for participant in self.operations[alert.operation].participants
        )


@dataclass
class Scenario:
    territory: dict[str, str]
    operations: dict[str, tuple[str, tuple[str, ...]]]
    actions: list[Action]
    page_size: int
    sort_offset: int

    def world(self) -> World:
        return World(
            territory=dict(self.territory),
            operations={
                code: OperationModel(coordinator, set(participants), set(participants))
                for code, (coordinator, participants) in self.operations.items()
            },
        )


def route_key(route: Route | None) -> str | None:
    """A ``by=route`` key: origin to destination, null without an origin."""
    if route is None or route.origin is None:
        return None
    return f"{route.origin}-{route.destination}"


# --- generating scenarios --------------------------------------------------------------------


@st.composite
def routes(draw: st.DrawFn) -> Route:
    places = st.sampled_from(ROUTE_TERRITORIES)
    return Route(
        origin=draw(st.none() | places),
        transit=tuple(draw(st.lists(places, max_size=2, unique=True))),
        destination=draw(places),
    )


def draw_report(draw: st.DrawFn, world: World) -> Report:
    operation = draw(st.sampled_from(sorted(world.operations)))
    op = world.operations[operation]
    reporter = draw(st.sampled_from(op.members()))
    kinds = ["pre_alert", "seizure", "request"] + (["notice"] if reporter == op.coordinator else [])
    kind = draw(st.sampled_from(kinds))
    restricted = draw(st.sampled_from([True, True, False]))
    recipients = draw(st.lists(st.sampled_from(op.members()), unique=True, max_size=3))
    route = draw(routes()) if kind == "pre_alert" else draw(st.none() | routes())
    occurred_at = draw(st.sampled_from(OCCURRED_AT))
    return Report(operation, reporter, kind, restricted, tuple(recipients), route, occurred_at)


def draw_amend(draw: st.DrawFn, world: World) -> Amend:
    index = draw(st.sampled_from(world.changeable()))
    alert = world.alerts[index]
    members = world.operations[alert.operation].members()
    widen = alert.restricted and draw(st.booleans())
    extra: list[str] = []
    if alert.restricted and not widen:
        extra = draw(st.lists(st.sampled_from(members), unique=True, max_size=2))
    route = draw(st.none() | routes()) if alert.kind == "pre_alert" else None
    return Amend(index, widen, tuple(extra), route)


def draw_action(draw: st.DrawFn, world: World) -> Action:
    choices = ["report", "report", "report", "report"]
    with_participants = [code for code, op in sorted(world.operations.items()) if op.participants]
    with_outsiders = [
        code
        for code, op in sorted(world.operations.items())
        if set(world.territory) - op.participants
    ]
    changeable = world.changeable()
    choices += ["remove"] if with_participants else []
    choices += ["add"] if with_outsiders else []
    choices += ["amend", "amend", "withdraw"] if changeable else []
    choice = draw(st.sampled_from(choices))
    if choice == "report":
        return draw_report(draw, world)
    if choice == "remove":
        operation = draw(st.sampled_from(with_participants))
        participants = sorted(world.operations[operation].participants)
        return RemoveParticipant(operation, draw(st.sampled_from(participants)))
    if choice == "add":
        operation = draw(st.sampled_from(with_outsiders))
        outsiders = sorted(set(world.territory) - world.operations[operation].participants)
        return AddParticipant(operation, draw(st.sampled_from(outsiders)))
    if choice == "amend":
        return draw_amend(draw, world)
    return Withdraw(draw(st.sampled_from(changeable)))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    names = [f"A{i}" for i in range(draw(st.integers(3, 6)))]
    territory = {name: draw(st.sampled_from(HOME_TERRITORIES)) for name in names}
    operations: dict[str, tuple[str, tuple[str, ...]]] = {}
    for number in range(draw(st.integers(1, 2))):
        coordinator = draw(st.sampled_from(names))
        others = [name for name in names if name != coordinator]
        participants = draw(st.lists(st.sampled_from(others), unique=True, min_size=1))
        # The coordinator need not be a participant, but it may be one.
        if draw(st.integers(0, 4)) == 0:
            participants.append(coordinator)
        operations[f"OP{number}"] = (coordinator, tuple(participants))
    scenario = Scenario(
        territory,
        operations,
        actions=[],
        page_size=draw(st.sampled_from([1, 2, 3, 50])),
        sort_offset=draw(st.integers(0, len(SORTS) - 1)),
    )
    world = scenario.world()
    for _ in range(draw(st.integers(3, 16))):
        action = draw_action(draw, world)
        world.apply(action)
        scenario.actions.append(action)
    return scenario


# --- playing a scenario through the API ------------------------------------------------------


class Player:
    """Plays a scenario over HTTP, keeps the model in step and checks every write's answer."""

    def __init__(self, api: Api, scenario: Scenario, prefix: str) -> None:
        self.api = api
        self.scenario = scenario
        self.prefix = prefix
        self.world = scenario.world()
        self.names = list(scenario.territory)
        self.keys: dict[str, dict[str, str]] = {}
        self.analyst_keys: dict[str, dict[str, str]] = {}
        self.ids: list[str] = []
        self.seqs: list[int] = []

    def code(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def name(self, code: str) -> str:
        assert code.startswith(f"{self.prefix}-"), code
        return code.removeprefix(f"{self.prefix}-")

    def index_of(self, alert_id: str) -> int:
        assert alert_id in self.ids, f"an alert this scenario never reported: {alert_id}"
        return self.ids.index(alert_id)

    async def set_up(self) -> None:
        for name, territory in self.scenario.territory.items():
            await self.api.administration(self.code(name), territory)
        for operation, (coordinator, participants) in self.scenario.operations.items():
            await self.api.operation(
                self.code(operation),
                coordinator=self.code(coordinator),
                participants=[self.code(p) for p in participants],
            )
        for name in self.scenario.territory:
            self.keys[name] = await self.api.key(self.code(name), "member")
            self.analyst_keys[name] = await self.api.key(self.code(name), "analyst")

    async def play(self, action: Action) -> None:
        """Send ``action``, step the model, and check what the server stored."""
        method, url, body, headers, status = self.request_for(action)
        response = await self.api.client.request(method, url, json=body, headers=headers)
        assert response.status_code == status, (action, response.status_code, response.text)
        self.world.apply(action)
        if isinstance(action, Report):
            alert = response.json()
            self.ids.append(alert["id"])
            self.seqs.append(alert["seq"])
            assert alert["reported_by"] == self.code(action.reporter)
            self.check_audience(alert, self.world.alerts[-1])
        elif isinstance(action, Amend):
            self.check_audience(response.json(), self.world.alerts[action.alert])
        elif isinstance(action, Withdraw):
            assert response.json()["status"] == "withdrawn"

    def request_for(self, action: Action) -> tuple[str, str, Any, dict[str, str], int]:
        """Method, URL, JSON body, headers and expected status of the request for ``action``."""
        if isinstance(action, Report):
            url = f"/v1/operations/{self.code(action.operation)}/alerts"
            return "POST", url, self.alert_body(action), self.keys[action.reporter], 201
        if isinstance(action, Amend | Withdraw):
            alert = self.world.alerts[action.alert]
            url = f"/v1/alerts/{self.ids[action.alert]}"
            if isinstance(action, Withdraw):
                body = {"reason": "no longer relevant"}
                return "POST", f"{url}/withdraw", body, self.keys[alert.reporter], 200
            return "PATCH", url, self.patch_body(action, alert), self.keys[alert.reporter], 200
        url = f"/v1/operations/{self.code(action.operation)}/participants"
        if isinstance(action, RemoveParticipant):
            return "DELETE", f"{url}/{self.code(action.administration)}", None, ADMIN, 204
        return "POST", url, {"administration": self.code(action.administration)}, ADMIN, 201

    def alert_body(self, action: Report) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": action.kind,
            "occurred_at": action.occurred_at,
            "location": {"territory": self.world.territory[action.reporter]},
            "summary": f"{action.kind} from {action.reporter} in {action.operation}",
            "audience": self.audience(action.restricted, action.recipients),
        }
        if action.route is not None:
            body["route"] = action.route.as_json()
        if action.kind == "seizure":
            body["transport_mode"] = "mail"
            body["items"] = [{"commodity": "heroin", "quantity": 1.5, "unit": "kg"}]
        return body

    def audience(self, restricted: bool, recipients: Iterable[str]) -> dict[str, Any]:
        if not restricted:
            return {"scope": "operation"}
        return {"scope": "restricted", "recipients": [self.code(r) for r in sorted(recipients)]}

    def patch_body(self, action: Amend, alert: AlertModel) -> dict[str, Any]:
        patch: dict[str, Any] = {"summary": f"amended {alert.kind} from {alert.reporter}"}
        if action.widen_to_operation:
            # A merge patch keeps members it does not name: drop the recipients explicitly.
            patch["audience"] = {"scope": "operation", "recipients": None}
        elif action.extra_recipients:
            # Never narrow: send back everyone the stored audience lists, plus the new ones.
            everyone = alert.recipients | set(action.extra_recipients)
            patch["audience"] = self.audience(True, everyone)
        if action.route is not None:
            patch["route"] = action.route.as_json()
        return patch

    def check_audience(self, rendered: dict[str, Any], alert: AlertModel) -> None:
        """The stored audience lists everyone it reaches, route targeting included."""
        audience = rendered["audience"]
        if not alert.restricted:
            assert audience == {"scope": "operation"}, audience
            return
        assert audience["scope"] == "restricted", audience
        stored = {self.name(code) for code in audience["recipients"]}
        assert stored == alert.recipients, (
            f"{rendered['id']}: stored {stored}, expected {alert.recipients}"
        )

    # --- checks ----------------------------------------------------------------------------

    async def direct_reads(self, name: str) -> set[int]:
        """Indexes of the alerts ``GET /v1/alerts/{id}`` shows ``name``; checks each answer."""
        expected = self.world.visible(name)
        shown: set[int] = set()
        for index, alert_id in enumerate(self.ids):
            response = await self.api.client.get(f"/v1/alerts/{alert_id}", headers=self.keys[name])
            if response.status_code == 200:
                shown.add(index)
                assert response.json()["id"] == alert_id
                self.check_audience(response.json(), self.world.alerts[index])
            else:
                assert_problem(response, 404)
        assert shown == expected, (
            f"{name} reads alerts {sorted(shown)}, expected {sorted(expected)}"
        )
        return shown

    async def listed(self, name: str) -> None:
        """``GET /v1/operations/{code}/alerts``, every page, lists exactly what ``name`` may see."""
        for number, operation in enumerate(self.world.operations):
            url = f"/v1/operations/{self.code(operation)}/alerts"
            # Each administration and operation walks the pages in another order.
            sort = SORTS[(self.scenario.sort_offset + number + self.names.index(name)) % len(SORTS)]
            if not self.world.may_open(name, operation):
                assert_problem(await self.api.client.get(url, headers=self.keys[name]), 404)
                continue
            listed: list[int] = []
            params: dict[str, Any] = {"limit": self.scenario.page_size, "sort": sort}
            while True:
                response = await self.api.client.get(url, params=params, headers=self.keys[name])
                assert response.status_code == 200, response.text
                page = response.json()
                listed += [self.index_of(item["id"]) for item in page["items"]]
                if page["next_cursor"] is None:
                    break
                params["cursor"] = page["next_cursor"]
            expected = self.world.visible(name, operation)
            assert len(listed) == len(set(listed)), (
                f"{name} got duplicates in {operation}: {listed}"
            )
            assert set(listed) == expected, (
                f"{name} lists {sorted(listed)} in {operation}, expected {sorted(expected)}"
            )
            assert listed == sorted(listed, key=partial(self.sort_key, sort)), (
                f"{operation} out of order: {listed}"
            )

    def sort_key(self, sort: str, index: int) -> tuple[Any, ...]:
        seq = self.seqs[index]
        at = self.world.alerts[index].occurred_at.timestamp()
        key = (seq,) if sort.endswith("seq") else (at, seq)
        return tuple(-part for part in key) if sort.startswith("-") else key

    async def events(self, name: str) -> None:
        """``GET /v1/events`` from 0 holds every event of each visible alert and nothing else."""
        seen: dict[int, list[str]] = {}
        since = last_seq = 0
        while True:
            response = await self.api.client.get(
                "/v1/events",
                params={"since": since, "limit": self.scenario.page_size},
                headers=self.keys[name],
            )
            assert response.status_code == 200, response.text
            page = response.json()
            if not page["items"]:
                assert page["next_since"] == since
                break
            for item in page["items"]:
                assert item["seq"] > last_seq, "events out of order"
                last_seq = item["seq"]
                index = self.index_of(item["alert"]["id"])
                if item["type"] == "alert.created":
                    assert item["seq"] == self.seqs[index]
                seen.setdefault(index, []).append(item["type"])
            assert page["next_since"] == last_seq
            since = last_seq
        expected = {index: self.world.alerts[index].events for index in self.world.visible(name)}
        assert seen == expected, f"{name} was sent events {seen}, expected {expected}"

    async def analysed(self, name: str) -> None:
        """Statistics count, and the export lists, exactly the alerts ``name`` may see."""
        for operation in self.world.operations:
            base = f"/v1/operations/{self.code(operation)}"
            headers = self.analyst_keys[name]
            if not self.world.may_open(name, operation):
                for path in ("/stats?by=route", "/export?format=ndjson"):
                    assert_problem(await self.api.client.get(base + path, headers=headers), 404)
                continue
            visible = [self.world.alerts[i] for i in sorted(self.world.visible(name, operation))]
            counted = [alert for alert in visible if not alert.withdrawn]
            expected = {
                "reported_by": Counter(self.code(alert.reporter) for alert in counted),
                "route": Counter(route_key(alert.route) for alert in counted),
                "commodity": Counter(
                    "heroin" if alert.kind == "seizure" else None for alert in counted
                ),
            }
            seizures = sum(alert.kind == "seizure" for alert in counted)
            for by, groups in expected.items():
                response = await self.api.client.get(f"{base}/stats?by={by}", headers=headers)
                assert response.status_code == 200, response.text
                stats = response.json()
                got = {group["key"]: group["alerts"] for group in stats["groups"]}
                assert got == dict(groups), f"{name} {operation} by {by}: {got} != {groups}"
                total = stats["total"]
                assert (total["alerts"], total["seizures"]) == (len(counted), seizures), total
                assert total["mass_kg"] == pytest.approx(1.5 * seizures)
            response = await self.api.client.get(f"{base}/export?format=ndjson", headers=headers)
            assert response.status_code == 200, response.text
            exported = {json.loads(line)["alert_id"] for line in response.text.splitlines()}
            assert {self.index_of(alert_id) for alert_id in exported} == self.world.visible(
                name, operation
            ), f"{name} exports the wrong alerts of {operation}"

    async def python_rule_agrees(self, shown: dict[str, set[int]]) -> None:
        """``Reach.may_see`` decides as the SQL predicate behind the HTTP reads did."""
        async with self.api.runtime.db.read_sessions() as session:
            ids = {
                code: id_
                for code, id_ in await session.execute(
                    select(Administration.code, Administration.id)
                )
            }
            rows = (
                await session.execute(
                    select(Alert.id, Alert.operation_id, Alert.reporter_id, Alert.audience_scope)
                )
            ).all()
            recipients: dict[str, set[int]] = {}
            for alert_id, administration_id in await session.execute(
                select(AlertRecipient.alert_id, AlertRecipient.administration_id)
            ):
                recipients.setdefault(alert_id, set()).add(administration_id)
            for name, indexes in shown.items():
                reach = await reach_of(session, administration_id=ids[self.code(name)])
                allowed = {
                    self.index_of(row.id)
                    for row in rows
                    if reach.may_see(
                        operation_id=row.operation_id,
                        reporter_id=row.reporter_id,
                        scope=row.audience_scope,
                        recipient_ids=recipients.get(row.id, set()),
                    )
                }
                assert allowed == indexes, (
                    f"Reach.may_see lets {name} see {sorted(allowed)}, HTTP shows {sorted(indexes)}"
                )


@dataclass
class Tally:
    """Per passing example: was some alert hidden from a current participant?"""

    verdicts: list[bool] = field(default_factory=list)
    failed: bool = False


@pytest.fixture
def tally() -> Iterator[Tally]:
    """Checked once every example ran: a generator that never hides anything proves nothing.

    Skipped when an example failed, since shrinking then runs mostly trivial examples.
    """
    tally = Tally()
    yield tally
    if not tally.failed and len(tally.verdicts) >= 10:
        share = sum(tally.verdicts) / len(tally.verdicts)
        assert share >= MIN_DISCRIMINATING_SHARE, (
            f"only {share:.0%} of {len(tally.verdicts)} examples hid an alert from a participant"
        )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # Every example costs hundreds of requests: shrink, but skip the explain phase.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
@given(scenario=scenarios())
async def test_every_read_path_shows_each_administration_exactly_what_it_may_see(
    api: Api, tally: Tally, scenario: Scenario
) -> None:
    await reset(api.runtime)
    player = Player(api, scenario, prefix=f"V{next(EXAMPLE_NUMBERS)}")
    try:
        await player.set_up()
        for action in scenario.actions:
            await player.play(action)
        note(f"alert ids by index: {player.ids}")
        hidden = player.world.hidden_from_participants()
        event(f"alerts hidden from some participant: {hidden > 0}")
        target(float(hidden), label="hidden (participant, alert) pairs")

        shown = {name: await player.direct_reads(name) for name in player.names}
        for name in player.names:
            await player.listed(name)
            await player.events(name)
            await player.analysed(name)
        await player.python_rule_agrees(shown)
    except BaseException:
        tally.failed = True
        raise
    tally.verdicts.append(hidden > 0)
