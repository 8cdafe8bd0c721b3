"""The stream's AsyncAPI document (the HTTP API's OpenAPI is FastAPI's own)."""

from __future__ import annotations

import yaml
from fastapi import APIRouter
from starlette.responses import Response

from app.asyncapi import document
from app.routers.responses import json_response

router = APIRouter(tags=["docs"], include_in_schema=False)


@router.get("/asyncapi.json")
async def asyncapi_json() -> Response:
    """The stream, as AsyncAPI 3."""
    return json_response(document())


@router.get("/asyncapi.yaml")
async def asyncapi_yaml() -> Response:
    """The stream, as AsyncAPI 3 in YAML."""
    return Response(yaml.safe_dump(document(), sort_keys=False), media_type="application/yaml")
