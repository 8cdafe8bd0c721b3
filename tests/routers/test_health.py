"""Operations endpoints (API.md section 11)."""

from __future__ import annotations

import time

from tests.api import Api


async def test_healthz_answers_ok_without_a_key(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_answers_ready_when_the_store_answers(api: Api) -> None:
    response = await api.client.get("/readyz")
    assert response.status_code == 200


async def test_metrics_are_prometheus_text_and_count_requests(api: Api) -> None:
    await api.client.get("/healthz")
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'relay_http_requests_total{method="GET",route="/healthz",status="200"}' in response.text


def _healthz_seconds(metrics: str) -> float:
    prefix = 'relay_http_request_seconds_sum{method="GET",route="/healthz"} '
    [line] = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


async def test_request_seconds_add_up_the_time_requests_took(api: Api) -> None:
    await api.client.get("/healthz")
    before = _healthz_seconds((await api.client.get("/metrics")).text)
    started = time.perf_counter()
    for _ in range(5):
        await api.client.get("/healthz")
    took = time.perf_counter() - started
    added = _healthz_seconds((await api.client.get("/metrics")).text) - before
    assert 0 < added <= took


async def test_an_unexpected_error_is_a_500_problem_without_details(database_url: str) -> None:
    from app.main import create_app
    from tests.api import assert_problem
    from tests.conftest import client_for, settings_for

    app = create_app(settings_for(database_url))

    async def boom() -> None:
        raise RuntimeError("secret internals: SELECT * FROM api_key")

    app.add_api_route("/boom", boom)
    async with app.router.lifespan_context(app), client_for(app) as client:
        response = await client.get("/boom")
        body = assert_problem(response, 500)
        assert "secret" not in response.text
        assert body["detail"] == "Internal Server Error"
        assert (await client.get("/healthz")).status_code == 200
