"""Where each WB API lives ([GEN] in the reference), and the one-URL override for fakes and demos."""

from __future__ import annotations

from dataclasses import dataclass, fields
from urllib.parse import urlsplit


def _clean(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) base URL: {url!r}")
    return url.strip().rstrip("/")


@dataclass(frozen=True, slots=True)
class WBHosts:
    """Base URLs per WB API; each must be `http(s)://host[:port][/prefix]` without a trailing slash.

    The old `suppliers-api.wildberries.ru` domain was switched off on 30.01.2025; do not use it.
    """

    common: str = "https://common-api.wildberries.ru"  # /ping, seller info
    feedbacks: str = "https://feedbacks-api.wildberries.ru"  # feedbacks and questions
    content: str = "https://content-api.wildberries.ru"  # product cards (barcodes)
    buyer_chat: str = "https://buyer-chat-api.wildberries.ru"
    returns: str = "https://returns-api.wildberries.ru"
    statistics: str = "https://statistics-api.wildberries.ru"  # orders, sales
    marketplace: str = "https://marketplace-api.wildberries.ru"  # FBS / DBS
    analytics: str = "https://seller-analytics-api.wildberries.ru"  # order feed

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _clean(getattr(self, f.name)))

    @classmethod
    def single(cls, url: str) -> WBHosts:
        """Every WB call goes to `url` (the `OTKLIK_WB_API_URL` override: fake server, offline demo)."""
        base = _clean(url)
        return cls(**{f.name: base for f in fields(cls)})

    @classmethod
    def from_setting(cls, wb_api_url: str | None) -> WBHosts:
        """The hosts for `Settings.wb_api_url`: one server when set, WB's production hosts otherwise."""
        return cls.single(wb_api_url) if wb_api_url else cls()

    @classmethod
    def sandbox(cls) -> WBHosts:
        """WB's sandbox hosts (test tokens only). APIs without a listed sandbox keep their prod host."""
        return cls(
            feedbacks="https://feedbacks-api-sandbox.wildberries.ru",
            content="https://content-api-sandbox.wildberries.ru",
            statistics="https://statistics-api-sandbox.wildberries.ru",
        )

    def for_api(self, api: str) -> str:
        """The base URL for an API name (a field name of this class)."""
        if api not in {f.name for f in fields(self)}:
            raise ValueError(f"unknown WB API {api!r}")
        value: str = getattr(self, api)
        return value
