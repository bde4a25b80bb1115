"""Settings from the environment (PARLEY_*, STRIPE_*). Nothing is read at import time."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", extra="ignore")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_host: str = "127.0.0.1"
    temporal_port: int = 7233
    # Full address wins over host/port (Compose sets temporal:7233).
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    task_queue: str = "parley"
    ui_port: int = 8233
    data_dir: Path = Path(".data")
    database_url: str | None = None
    admin_token: str | None = None
    # Signs the API's Updates and mediators' console tokens (domain/authority.py); without it
    # the admin token's digest serves. The API and every worker must share it.
    action_secret: str | None = None
    # The API as mediators' browsers reach it: the evidence links in the Temporal UI's details
    # point there (workflows/console.py). Default: http://{api_host}:{api_port}.
    public_api_url: str | None = None
    # After `POST /v1/parties/me/api-key` the replaced key still works this long (0: not at all).
    api_key_grace_seconds: int = Field(24 * 3600, ge=0)
    payments: Literal["sandbox", "stripe"] = "sandbox"
    smtp_url: str | None = None  # smtp://[user:pass@]host[:port][?starttls=1] or smtps://…
    smtp_from: str = "Parley <notifications@parley.local>"
    # Development and tests only: webhooks to plain http:// URLs, and to loopback, private or
    # otherwise non-public addresses (domain/webhook_targets.py). Never set them in production:
    # a party's webhook_url could then reach Parley itself or the private network.
    webhook_allow_http: bool = False
    webhook_allow_private: bool = False
    evidence_max_bytes: int = 10 * 1024 * 1024
    # Any other request body (api/body_limit.py); 413 as soon as it is exceeded.
    max_body_bytes: int = 1024 * 1024
    # Each call to Temporal from the API: a hung server is a 503 after this, not a hung request.
    temporal_rpc_timeout_seconds: float = 5.0
    # Overrides of the SPEC's default terms, e.g. PARLEY_DEFAULT_TERMS='{"review_window":"P7D"}'.
    default_terms: dict[str, Any] = {}
    # The reconciliation sweep's Schedule (workflows/reconciliation.py); 0 turns it off.
    reconciliation_every_minutes: int = 60
    # A campaign changed more recently than this may be between a rail call and its record:
    # the sweep leaves it to the next one.
    reconciliation_quiet_seconds: int = 60
    # Proof of performance (issue #15): how tracked posts are looked at, and how often. `link`
    # checks the post still answers; `http` reads its counts from `metrics_service_url`
    # (GET {url}?post=<post URL> → {"views": …}; 404/410: the post is gone). The interval is
    # pinned into each campaign at creation (workflows read no config).
    metrics_provider: Literal["link", "http"] = "link"
    metrics_service_url: str | None = None
    metrics_poll_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    metrics_timeout_seconds: float = 10.0
    worker_max_concurrent_activities: int = 100
    worker_max_concurrent_workflow_tasks: int = 100
    # Workflows kept in memory between tasks; the others replay their histories, in a new
    # sandbox, when woken: costly (with 1,000 open and all due at once, 250 cached made
    # creation 2.6 times slower and deadlines 17 s late). Every cached one is also walked by
    # Python's full garbage collection, a pause of the whole worker (1.5 s with 1,000
    # cached): with far more open than cached, a smaller cache keeps deadlines spread over
    # time within a second (README, "Scale and sizing").
    worker_max_cached_workflows: int = Field(1000, ge=0)
    # The Temporal SDK's own metrics (task slots, polls, latencies) in Prometheus format at
    # http://{worker_metrics_host}:{worker_metrics_port}/metrics, served by the worker process;
    # off when unset (`make dev` sets it). Each worker on a host needs its own port.
    worker_metrics_port: int | None = Field(None, ge=1, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    # OpenTelemetry traces (API request → Temporal Update → activity) go out over OTLP/HTTP
    # when the standard endpoint variable is set; the exporter reads the other OTEL_* itself.
    otlp_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
    )

    stripe_api_key: str | None = Field(
        None, validation_alias=AliasChoices("STRIPE_API_KEY", "PARLEY_STRIPE_API_KEY")
    )
    stripe_api_base: str | None = Field(
        None, validation_alias=AliasChoices("STRIPE_API_BASE", "PARLEY_STRIPE_API_BASE")
    )
    stripe_webhook_secret: str | None = Field(
        None,
        validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET", "PARLEY_STRIPE_WEBHOOK_SECRET"),
    )

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"{self.temporal_host}:{self.temporal_port}"

    @property
    def console_url(self) -> str:
        return self.public_api_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def authority_key(self) -> bytes | None:
        from domain.authority import derive_key

        secret = self.action_secret or self.admin_token
        return derive_key(secret) if secret else None

    @property
    def db_url(self) -> str:
        """The configured database, or an SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'parley.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


async def connect_temporal(settings: Settings, *, lazy: bool = False):
    """A Temporal client speaking pydantic models, as every workflow payload is one.

    `lazy` defers the connection to the first call, so the API starts (and reports itself
    not ready) while Temporal is down, and reconnects when it returns.
    """
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from api.authority import ApiSigner

    key = settings.authority_key
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=[ApiSigner(key)] if key else [],
        lazy=lazy,
    )
