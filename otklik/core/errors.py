"""One exception tree for the domain. Each error carries a message that is safe to show a user."""

from __future__ import annotations

import math


class OtklikError(Exception):
    """Base of every domain error; `user_message` is safe to show to a buyer or an admin."""

    status_code = 400

    def __init__(self, user_message: str, *, details: object = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.details = details


class NotFound(OtklikError):
    status_code = 404


class Forbidden(OtklikError):
    status_code = 403


class InvalidInput(OtklikError):
    status_code = 422


class TooLarge(OtklikError):
    status_code = 413


class Conflict(OtklikError):
    status_code = 409


class RateLimited(OtklikError):
    """Too many requests; the answer carries `Retry-After` (whole seconds, at least 1)."""

    status_code = 429

    def __init__(self, user_message: str, retry_after: float) -> None:
        super().__init__(user_message)
        self.retry_after = max(1, math.ceil(retry_after))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Unavailable(OtklikError):
    """Storage or a required service is down; the caller may retry later."""

    status_code = 503


class FlowInvalid(InvalidInput):
    """A flow failed validation; `errors` lists every problem with flow, node and field."""

    def __init__(self, errors: list[FlowIssue]) -> None:
        super().__init__(f"flow is invalid: {len(errors)} error(s)", details=errors)
        self.errors = errors


class FlowIssue:
    """One validation problem, located by flow id, node id and field path."""

    __slots__ = ("field", "flow", "message", "node")

    def __init__(self, flow: str, node: str | None, field: str, message: str) -> None:
        self.flow, self.node, self.field, self.message = flow, node, field, message

    def __str__(self) -> str:
        where = (
            f"{self.flow}" + (f" / node {self.node}" if self.node else "") + (f" / {self.field}" if self.field else "")
        )
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"FlowIssue({self!s})"

    def to_dict(self) -> dict[str, str | None]:
        return {"flow": self.flow, "node": self.node, "field": self.field, "message": self.message}
