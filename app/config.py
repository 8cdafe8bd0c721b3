"""Settings read from the environment (prefix ``RELAY_``) and an optional ``.env`` file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the server can be told from outside; see API.md section 12."""

    model_config = SettingsConfigDict(env_prefix="RELAY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./relay.db"
    broker_url: str | None = None
    bootstrap_token: str | None = Field(default=None, repr=False)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit: float = Field(default=100.0, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"

    # Tuning knobs that the contract does not name; defaults suit one small node.
    db_timeout: float = Field(default=4.0, gt=0, description="seconds before a DB call answers 503")
    write_batch_max: int = Field(default=256, ge=1)
    audit_flush_interval: float = Field(default=0.5, gt=0)
    max_body_bytes: int = 256 * 1024
    stream_compression: Literal["off", "shared"] = Field(
        default="shared",
        description="per-message deflate on the stream for clients that offer it, each "
        "distinct message compressed once for every connection that receives it (shared), "
        "or declined (off)",
    )

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("bootstrap_token", "broker_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
