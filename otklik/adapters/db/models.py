"""Database tables. Payload schemas (channels, API) are separate from these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from otklik.core.conversation import Status

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identity columns.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite stores them naive (in UTC), PostgreSQL as timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use otklik.clock.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UTCDateTime()}


class ChannelAccount(Base):
    """One bot / number / marketplace key / web chat."""

    __tablename__ = "channel_accounts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120), unique=True)
    pack: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret: Mapped[str | None] = mapped_column(Text)  # Fernet-encrypted token
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Contact(Base):
    """A buyer or client. Minimal personal data: a display name and a language."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str | None] = mapped_column(String(8))
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]


class ContactIdentity(Base):
    """A contact's id on one channel account (chat id, phone, web-chat session)."""

    __tablename__ = "contact_identities"
    __table_args__ = (UniqueConstraint("channel_account_id", "external_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Conversation(Base):
    """The thread between a contact and one channel account, with its flow state."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("identity_id"),
        Index("ix_conversations_status_waiting", "status", "waiting_since"),
        Index("ix_conversations_last_message", "last_message_at"),
        Index("ix_conversations_status_last", "status", "last_message_at"),
        Index("ix_conversations_assigned", "assigned_to", "last_message_at"),
        Index("ix_conversations_account_last", "channel_account_id", "last_message_at"),
        Index("ix_conversations_queue", "status", "priority", "waiting_since"),  # the inbox's waiting view
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("contact_identities.id", ondelete="CASCADE"))
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    status: Mapped[str] = mapped_column(String(24), default=Status.BOT)
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    flow: Mapped[str | None] = mapped_column(String(80))
    node: Mapped[str | None] = mapped_column(String(80))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    assigned_to: Mapped[int | None] = mapped_column(BigInteger)
    waiting_since: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None]
    unread: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # buyer messages no operator saw
    last_text: Mapped[str] = mapped_column(String(200), default="", server_default="")  # the inbox list preview
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Message(Base):
    """One message in or out, with delivery marks."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation", "conversation_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    author: Mapped[str] = mapped_column(String(16))  # buyer | bot | operator | system
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # buttons, attachments, button payload
    external_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # conversations.statuses.MessageStatus
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]


class InboundEventRow(Base):
    """Every inbound event once: the unique key makes redelivery harmless."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("channel_account_id", "external_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    received_at: Mapped[datetime]


class OutboxRow(Base):
    """A message waiting to be sent. pending -> sending (leased) -> sent | failed | uncertain.

    Status values: `otklik.conversations.statuses.OutboxStatus`. Adapters sit below conversations, so the
    default is the literal (tests/conversations/test_statuses.py holds it equal to `OutboxStatus.PENDING`)."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "status", "due_at"),
        Index("ix_outbox_conversation", "conversation_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    recipient: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    send_count: Mapped[int] = mapped_column(Integer, default=0)  # provider calls made: must stay <= 1
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # set just before the provider call of a channel without idempotency keys: a row whose lease ran out
    # without it never left (back to pending after a crash), with it maybe did (uncertain)
    started_at: Mapped[datetime | None]


class SendPace(Base):
    """The shared send pace of a channel account (`conversations/sharedpace.py`): the earliest time (Unix
    seconds) of its next message, and how many it sent on `day` (UTC, ISO date)."""

    __tablename__ = "send_pace"
    channel_account_id: Mapped[int] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    next_at: Mapped[float] = mapped_column(Float)
    day: Mapped[str] = mapped_column(String(10))
    day_count: Mapped[int] = mapped_column(Integer)


class Timer(Base):
    """A durable due time: a wait node, a question timeout, a pending action (re-run after a crash)."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due", "status", "due_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # conversations.statuses.TimerKind: wait | timeout | action
    token: Mapped[str] = mapped_column(String(240))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # TimerStatus (literal: see OutboxRow)
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]


class FlowVersion(Base):
    """Every saved version of a flow; one version per flow key is active."""

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("flow_key", "version"), Index("ix_flow_active", "flow_key", "active"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    flow_key: Mapped[str] = mapped_column(String(80))
    pack: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[datetime]


class FlowLayout(Base):
    """Where the visual builder draws each node of a flow (`{node id: [x, y]}`), kept beside the flow's
    versions and never inside its logic: moving a card changes no version and no YAML."""

    __tablename__ = "flow_layouts"
    flow_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    positions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_by: Mapped[str] = mapped_column(String(120), default="system")
    updated_at: Mapped[datetime]


class EventLog(Base):
    """Audit and event log: who or what did what to which subject."""

    __tablename__ = "event_log"
    __table_args__ = (
        Index("ix_event_log_subject", "subject_type", "subject_id"),
        Index("ix_event_log_ts", "ts"),
        Index("ix_event_log_kind_ts", "kind", "ts"),
        Index("ix_event_log_actor_ts", "actor", "ts"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ts: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Setting(Base):
    """Key-value settings and counters (e.g. the flows revision that invalidates caches)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class CallbackPayload(Base):
    """Button payloads longer than a channel allows (Telegram: 64 bytes), kept under a short key."""

    __tablename__ = "callback_payloads"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class User(Base):
    """An employee who signs in to the admin. Roles: owner, admin, operator, moderator, analyst."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    login: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="ru")
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class AdminSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie value is stored; logout deletes the row."""

    __tablename__ = "admin_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ip: Mapped[str] = mapped_column(String(64), default="")


class LoginFailure(Base):
    """Failed sign-ins, for throttling by login and by address."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_login", "login", "ts"), Index("ix_login_failures_ip", "ip", "ts"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    login: Mapped[str] = mapped_column(String(120))
    ip: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime]


class CannedResponse(Base):
    """An operator's ready answer; its text is a template with the conversation's variables."""

    __tablename__ = "canned_responses"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(120), default="system")
    created_at: Mapped[datetime]


class ContactTag(Base):
    """One tag of a contact (indexed, so the inbox can filter by tag)."""

    __tablename__ = "contact_tags"
    __table_args__ = (Index("ix_contact_tags_tag", "tag", "contact_id"),)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]


# --- Wildberries product cache: filled by care's sync job, read by care and cashback (both use it) ----------------


class WBProduct(Base):
    """A seller's WB product card, cached by the sync job (`otklik wb sync`)."""

    __tablename__ = "wb_products"
    __table_args__ = (UniqueConstraint("channel_account_id", "nm_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    nm_id: Mapped[int] = mapped_column(BigInteger)
    vendor_code: Mapped[str] = mapped_column(String(120), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    brand: Mapped[str] = mapped_column(String(120), default="")
    subject: Mapped[str] = mapped_column(String(120), default="")
    wb_updated_at: Mapped[str] = mapped_column(String(40), default="")  # WB's updatedAt, verbatim
    synced_at: Mapped[datetime]


class WBChat(Base):
    """One Wildberries buyer chat of a seller account (`channels/wildberries`): the `replySign` a reply
    needs and the product / order card the buyer opened the chat from (nmID, price, `rid` = order id,
    size). Refreshed from `GET /api/v1/seller/chats`; the buyer's name is not kept here."""

    __tablename__ = "wb_chats"
    __table_args__ = (UniqueConstraint("channel_account_id", "chat_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    chat_id: Mapped[str] = mapped_column(String(200))
    reply_sign: Mapped[str] = mapped_column(String(255), default="")  # WB: ≤ 255 characters
    good_card: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {nm_id, price, currency, order_id, size}
    updated_at: Mapped[datetime]


class ApiToken(Base):
    """A bearer token of the REST API (`otklik api-tokens create`). Only the SHA-256 of the token is stored;
    `prefix` (its first characters) lets an owner tell tokens apart. Revoked tokens stay, for the record."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    scopes: Mapped[str] = mapped_column(String(400))  # comma-separated: "financing,orders"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    prefix: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WebhookEndpoint(Base):
    """A receiver of signed event webhooks (`otklik webhooks add`, Settings → Webhooks). `events` is a
    comma-separated list of patterns: an exact type (`order.paid`), a prefix (`order.*`) or `*`. The signing
    secret is Fernet-encrypted (the Vault)."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[str] = mapped_column(Text)  # Fernet-encrypted
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookEvent(Base):
    """One emitted event: `event_id` (a UUID, the receivers' idempotency key) and the envelope sent as is
    (`payload`: {"id", "type", "created_at", "data"}). `subject` ("order:A-17") orders deliveries: one
    endpoint gets the events of one subject one after the other."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_subject", "subject", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str | None] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One event to one endpoint. `status`: pending | sending | delivered | failed | gave_up. `next_attempt_at`
    is when a pending row is due, and for a `sending` row the end of its claim (a worker that died while
    sending leaves it to be claimed again then). `claim` is the token of the claim that may finish it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_subject", "endpoint_id", "subject", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    subject: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    give_up_at: Mapped[datetime | None]  # None: created_at + the worker's webhook_retry_hours
    claim: Mapped[str | None] = mapped_column(String(64))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StaffMember(Base):
    """An executive or another member of staff who is told about orders, bookings, leads
    (`otklik.platform.staff`): reached on Telegram (a person's or a staff group's chat id) and/or by e-mail."""

    __tablename__ = "staff_members"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    telegram_chat_id: Mapped[str | None] = mapped_column(String(40))  # "123456", "-1001234567890" or "@channel"
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    packs: Mapped[str] = mapped_column(String(400), default="")  # comma-separated pack ids; "" = every pack
    rules: Mapped[str] = mapped_column(String(400), default="")  # comma-separated keys: "category:nvr,tag:vip"
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StaffRotation(Base):
    """Where the round robin of a pool (a pack, or a pack and a rule key) stands: the member assigned last."""

    __tablename__ = "staff_rotation"
    pool: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_staff_id: Mapped[int | None] = mapped_column(BigInteger)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class StaffNotification(Base):
    """One message to one member of staff on one transport: written in the caller's transaction, delivered by
    the worker's `staff-notify` job (pending -> sending -> sent | failed | uncertain)."""

    __tablename__ = "staff_notifications"
    __table_args__ = (
        Index("ix_staff_notifications_due", "status", "due_at"),
        Index("ix_staff_notifications_about", "subject_type", "subject_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id", ondelete="SET NULL"), index=True)
    transport: Mapped[str] = mapped_column(String(16))  # "telegram", "email"; more register themselves
    address: Mapped[str] = mapped_column(String(254))  # the chat id or e-mail address when it was written
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(2000), default="")
    subject_type: Mapped[str] = mapped_column(String(32), default="")  # what it is about: "order", "booking"
    subject_id: Mapped[str] = mapped_column(String(64), default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(240), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(120))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class ReachAttempt(Base):
    """One try to reach a contact outside the chat on one route (`otklik.platform.reach`, docs/reach.md):
    the channel the contact came from, SMS or e-mail. A call of `reach(...)` writes the first route's row;
    when a route cannot reach the person the worker writes the next one. (dedup_key, route) is unique: a
    message is never queued twice on one route. `address` is masked (the contact keeps the real one)."""

    __tablename__ = "reach_attempts"
    __table_args__ = (
        UniqueConstraint("dedup_key", "route"),
        Index("ix_reach_attempts_due", "status", "due_at"),
        Index("ix_reach_attempts_check", "status", "check_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    dedup_key: Mapped[str] = mapped_column(String(200))
    route: Mapped[str] = mapped_column(String(16))  # "channel", "sms", "email"
    next_routes: Mapped[str] = mapped_column(String(64), default="")  # what to try after this one: "sms,email"
    text: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(80), default="")  # masked: "+7******4567", "a***@mail.example"
    status: Mapped[str] = mapped_column(String(16), default="queued")
    provider: Mapped[str] = mapped_column(String(32), default="")  # "smsru", "http", "smtp", "channel"
    provider_id: Mapped[str | None] = mapped_column(String(120))
    parts: Mapped[int] = mapped_column(Integer, default=0)  # SMS segments
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(120))
    check_at: Mapped[datetime | None]  # the next delivery-status poll (SMS.ru)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]


class ApiIdempotency(Base):
    """An `Idempotency-Key` of a REST API POST, per token: reserved before the request runs (`status_code`
    NULL), then the response kept as is, so a retry with the same key gets the same answer without doing
    the work again. `request_hash` (SHA-256 of method, path and body) refuses the key reused for another
    request. Purged after `api_idempotency_hours`."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("token_id", "key"), Index("ix_api_idempotency_created", "created_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[str | None] = mapped_column(Text)  # the JSON body, verbatim
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class CustomerWindow(Base):
    """When the customer of a channel with a customer-service window (WhatsApp) last wrote to the account:
    free-form messages may go for 24 h after it (`otklik.conversations.window`)."""

    __tablename__ = "customer_windows"
    channel_account_id: Mapped[int] = mapped_column(
        ForeignKey("channel_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    recipient: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_inbound_at: Mapped[datetime]


class MessageTemplate(Base):
    """An approved (or pending, rejected …) message template of a channel account, as synced from the provider
    (WhatsApp: `GET /{waba_id}/message_templates`)."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("channel_account_id", "name", "language"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(15))
    category: Mapped[str] = mapped_column(String(32), default="")  # MARKETING | UTILITY | AUTHENTICATION
    status: Mapped[str] = mapped_column(String(32), default="")  # APPROVED | PENDING | REJECTED | PAUSED …
    params: Mapped[int] = mapped_column(Integer, default=0)  # body parameters {{1}} … {{n}}
    body: Mapped[str] = mapped_column(Text, default="")
    provider_id: Mapped[str] = mapped_column(String(64), default="")
    synced_at: Mapped[datetime]


class ABTest(Base):
    """An A/B test seen at least once (a flow's `ab:` or a broadcast's): its variants and goal as exposed,
    and whether it was ended keeping one variant (`otklik.conversations.abtests`)."""

    __tablename__ = "ab_tests"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    source: Mapped[str] = mapped_column(String(120), default="")  # "flow:<flow>/<node>", "broadcast:<id>"
    variants: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"keys": [...], "splits": [...]}
    goal: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"kind", "button"?, "node"?, "window"}
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | ended
    kept: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(120))


class ABExposure(Base):
    """A contact saw a variant of a test (once per test and contact: the first exposure counts)."""

    __tablename__ = "ab_exposures"
    __table_args__ = (UniqueConstraint("test_key", "contact_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    test_key: Mapped[str] = mapped_column(String(80))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger)
    variant: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(120), default="")
    exposed_at: Mapped[datetime]


class ABConversion(Base):
    """A contact exposed to a test reached its goal (once per test and contact)."""

    __tablename__ = "ab_conversions"
    __table_args__ = (UniqueConstraint("test_key", "contact_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    test_key: Mapped[str] = mapped_column(String(80))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    variant: Mapped[str] = mapped_column(String(32))
    goal: Mapped[str] = mapped_column(String(16))
    converted_at: Mapped[datetime]


class SurveyAnswer(Base):
    """One answer of a survey tree (`otklik.core.survey`): the option chosen, or the free text of "other"
    (capped, masked). `source` is the run that sent the survey ("winback:3", "broadcast:12") or "" when the
    buyer opened it."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        UniqueConstraint("survey", "question", "contact_id", "source"),
        Index("ix_survey_answers_question", "survey", "question"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    survey: Mapped[str] = mapped_column(String(80))
    question: Mapped[str] = mapped_column(String(64))
    option: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(String(500))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(120), default="")
    answered_at: Mapped[datetime]
