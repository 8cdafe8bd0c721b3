"""Operations endpoints (API.md section 11)."""

from __future__ import annotations

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
