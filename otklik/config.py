"""Typed settings from the environment (`OTKLIK_*`) and/or `otklik.toml`, validated at start-up."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

PLACEHOLDER_SECRET = "dev-insecure-change-me"  # noqa: S105 - refused in production


class Settings(BaseSettings):
    """Every setting of otklik. Environment variables win over `otklik.toml`."""

    model_config = SettingsConfigDict(env_prefix="OTKLIK_", toml_file="otklik.toml", extra="ignore")

    env: Literal["dev", "production", "test"] = Field("dev", description="production refuses unsafe defaults")
    data_dir: Path = Field(Path("data"), description="SQLite database, media and caches live here")
    database_url: str | None = Field(None, description="default: SQLite in data_dir; or postgresql+asyncpg://…")
    redis_url: str | None = Field(
        None, description="redis://…: the channel accounts' shared send pace lives there instead of the database"
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    secret_key: str = Field(PLACEHOLDER_SECRET, description="signs sessions and CSRF tokens")
    fernet_key: str | None = Field(None, description="encrypts tokens and payout details at rest")
    demo: bool = Field(True, description="seed a demo seller with the care-ru pack on an empty database")
    default_pack: str = "care-ru"
    packs_dirs: tuple[Path, ...] = Field((), description="extra folders with a seller's own packs")
    max_text_chars: int = Field(4096, ge=1, le=65536)
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    public_url: str | None = Field(None, description="https base URL for webhooks; none = long polling")
    telegram_api_url: str = "https://api.telegram.org"
    telegram_tokens: tuple[SecretStr, ...] = Field((), description="bots to connect at start (JSON list in env)")
    whatsapp_api_url: str = Field(
        "https://graph.facebook.com/v21.0", description="Meta's Graph API with its version; a proxy or the fake"
    )
    zenvia_api_url: str = Field("https://api.zenvia.com", description="Zenvia's API (v2 paths); a proxy or the fake")
    instagram_api_url: str = Field(
        "https://graph.facebook.com/v21.0", description="Meta's Graph API for Instagram Direct; a proxy or the fake"
    )
    wb_api_url: str | None = Field(None, description="send every Wildberries call to this one server")
    wb_chat_poll_seconds: float = Field(
        3.0, ge=0.01, le=60, description="pause between two Wildberries chat event polls while nothing comes"
    )
    nlu: Literal["auto", "keywords"] = Field("auto", description="auto: the offline classifier when available")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint up to /v1; none = offline only")
    llm_api_key: SecretStr = Field(SecretStr(""), description="sent as Bearer; local servers ignore it")
    llm_model: str = Field("gpt-4o-mini", description="model name at that endpoint")
    llm_timeout: float = Field(8.0, gt=0, le=120, description="seconds per LLM call; then the offline path")
    knowledge_threshold: float = Field(0.25, ge=0, le=1, description="minimum confidence to answer from an article")
    # dispatcher and scheduler
    dispatch_batch: int = Field(200, ge=1, le=5000)
    dispatch_concurrency: int = Field(64, ge=1, le=1024)
    dispatch_poll_seconds: float = Field(0.5, gt=0)
    outbox_lease_seconds: float = Field(60.0, gt=0)
    send_pace_margin: float = Field(
        0.025, ge=0, le=0.5, description="share kept under an account's msg/s: the tolerated jitter in seconds"
    )
    send_timeout_seconds: float = Field(30.0, gt=0)
    send_max_attempts: int = Field(6, ge=1, le=50)
    send_backoff_base: float = Field(2.0, gt=0)
    timer_poll_seconds: float = Field(0.5, gt=0)
    action_grace_seconds: float = Field(30.0, ge=0)
    webchat_poll_max_seconds: float = Field(25.0, ge=0, le=60)
    # outgoing event webhooks (docs/webhooks.md)
    webhook_poll_seconds: float = Field(1.0, gt=0, description="how often the webhook worker looks for due rows")
    webhook_batch: int = Field(20, ge=1, le=500, description="deliveries claimed and sent at once per worker")
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=120, description="per delivery attempt")
    webhook_lease_seconds: float = Field(60.0, gt=0, description="a claimed delivery is re-claimable after this")
    webhook_backoff_base_seconds: float = Field(30.0, gt=0, description="first retry wait; doubles per attempt")
    webhook_backoff_max_seconds: float = Field(3600.0, gt=0, description="the longest wait between attempts")
    webhook_retry_hours: float = Field(24.0, gt=0, le=24 * 14, description="then a delivery is given up")
    webhook_keep_days: int = Field(30, ge=1, description="finished deliveries and their events are kept this long")
    # web chat abuse limits (per process, sliding 60-second windows; 0 = no limit)
    webchat_sessions_per_address: int = Field(20, ge=0, description="new chats per client address per minute")
    webchat_messages_per_address: int = Field(120, ge=0, description="messages per client address per minute")
    webchat_messages_per_session: int = Field(30, ge=0, description="messages (files included) per chat per minute")
    webchat_uploads_per_session: int = Field(5, ge=0, description="files per chat per minute")
    webchat_media_files_per_session: int = Field(20, ge=0, description="files one chat may upload in all")
    webchat_media_bytes_per_session: int = Field(50 * 1024 * 1024, ge=0, description="bytes one chat may upload")
    sqlite_busy_timeout_ms: int = Field(15000, ge=0, description="how long a writer waits for SQLite's lock")
    cache_path: Path | None = Field(None, description="trained models cache (default: data_dir/cache)")
    log_level: str = "INFO"
    # staff notifications (`otklik.platform.staff`, docs/staff.md)
    staff_telegram_account: str | None = Field(
        None, description="the Telegram channel account whose bot tells staff; none = the first enabled one"
    )
    staff_notify_poll_seconds: float = Field(2.0, gt=0, description="how often the worker looks for notifications")
    staff_notify_max_attempts: int = Field(12, ge=1, le=100, description="then a notification is marked failed")
    staff_notify_backoff_base: float = Field(5.0, gt=0, description="seconds; doubled per failed attempt")
    staff_notify_backoff_max: float = Field(1800.0, gt=0, description="the longest wait between two attempts")
    smtp_host: str | None = Field(None, description="SMTP server for e-mail to staff; none = no e-mail")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = Field("otklik@localhost", description="the From address of staff e-mail")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="starttls (port 587), ssl (implicit TLS, port 465) or none (a local relay)"
    )
    smtp_timeout: float = Field(30.0, gt=0, le=300)
    # reaching a person outside the chat: SMS and e-mail (`otklik.platform.reach`, docs/reach.md)
    sms_ru_url: str = Field("https://sms.ru", description="SMS.ru's API root (a fake server's in tests)")
    sms_region: str = Field("RU", min_length=2, max_length=2, description="region of phone numbers without +")
    sms_max_parts: int = Field(4, ge=1, le=8, description="longer texts are refused for SMS (SMS.ru: at most 8)")
    reach_poll_seconds: float = Field(2.0, gt=0, description="how often the worker looks for queued attempts")
    reach_max_attempts: int = Field(8, ge=1, le=100, description="then a route is given up (the next one is tried)")
    reach_backoff_base: float = Field(10.0, gt=0, description="seconds; doubled per failed attempt")
    reach_backoff_max: float = Field(1800.0, gt=0, description="the longest wait between two attempts")
    reach_status_every: float = Field(300.0, gt=0, description="seconds between two SMS delivery-status polls")
    reach_status_hours: float = Field(48.0, gt=0, le=24 * 7, description="delivery status is polled this long")
    # REST API (/api/v1, docs/api.md) and Prometheus (/metrics, docs/prometheus.md)
    api_requests_per_minute: int = Field(600, ge=0, description="requests per API token per minute (0: no limit)")
    api_burst: int = Field(60, ge=1, description="requests an API token may make at once before the pace applies")
    api_max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024, description="largest REST API body")
    api_idempotency_hours: float = Field(24.0, gt=0, le=24 * 30, description="Idempotency-Key answers kept this long")
    metrics_token: str | None = Field(None, description="bearer token that may read /metrics from any address")
    metrics_allow: tuple[str, ...] = Field(
        (), description="addresses/networks that may read /metrics without a token (loopback always may)"
    )
    # HTTP edge
    trusted_proxies: tuple[str, ...] = Field(
        (), description="addresses/networks of reverse proxies whose X-Forwarded-For is believed (JSON list in env)"
    )
    chat_frame_ancestors: tuple[str, ...] = Field(
        ("*",), description="sites allowed to embed /chat in a frame, e.g. https://shop.example (JSON list in env)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("fernet_key")
    @classmethod
    def _fernet_key_is_valid(cls, value: str | None) -> str | None:
        if value:
            try:
                Fernet(value.encode())
            except (ValueError, TypeError):
                raise ValueError(
                    "OTKLIK_FERNET_KEY is not a Fernet key (32 url-safe base64-encoded bytes); make one with "
                    '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'
                ) from None
        return value

    @field_validator("trusted_proxies", "metrics_allow")
    @classmethod
    def _proxies_are_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)") from None
        return tuple(item.strip() for item in value)

    @field_validator("chat_frame_ancestors")
    @classmethod
    def _ancestors_are_sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not item or any(c in item for c in " ;,'\"\n\r"):
                raise ValueError(f"{item!r} is not a CSP source such as https://shop.example")
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.env == "production":
            if self.secret_key == PLACEHOLDER_SECRET or len(self.secret_key) < 32:
                raise ValueError("OTKLIK_SECRET_KEY must be set to a random value of 32+ characters in production")
            if not self.fernet_key:
                raise ValueError("OTKLIK_FERNET_KEY must be set in production (payout details are encrypted)")
        return self

    @model_validator(mode="after")
    def _webhook_lease_outlives_an_attempt(self) -> Settings:
        # A claimed delivery becomes claimable again after the lease: an attempt still running then would be
        # sent a second time, at once, by another worker.
        if self.webhook_lease_seconds < self.webhook_timeout_seconds + 5:
            raise ValueError(
                "OTKLIK_WEBHOOK_LEASE_SECONDS must be at least OTKLIK_WEBHOOK_TIMEOUT_SECONDS + 5 "
                f"(now {self.webhook_lease_seconds:g} and {self.webhook_timeout_seconds:g})"
            )
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'otklik.db').resolve()}"

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    @property
    def cache_dir(self) -> Path:
        return self.cache_path or self.data_dir / "cache"
