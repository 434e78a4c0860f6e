"""Admin users: roles, argon2 password hashes, server-side sessions, login throttling.

Sessions live in the database (only the SHA-256 of the cookie value is stored), so logout and a
password reset invalidate them at once, on every process. A login always issues a new session id
(no session fixation).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import AdminSession, LoginFailure, User
from otklik.clock import utcnow
from otklik.core.errors import Conflict, Forbidden, InvalidInput, NotFound, OtklikError
from otklik.platform.audit import audit
from otklik.platform.plugins import Permission


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"
    MODERATOR = "moderator"
    ANALYST = "analyst"


class Perm(StrEnum):
    INBOX_VIEW = "inbox.view"
    INBOX_REPLY = "inbox.reply"  # reply, notes, tags, assign, close, return to bot
    FLOWS_VIEW = "flows.view"
    FLOWS_EDIT = "flows.edit"
    SETTINGS = "settings"  # channel accounts, business hours, languages, hand-off texts, canned responses
    USERS = "users"
    AUDIT = "audit"
    STAFF = "staff"  # executives and other staff who are notified (owner and admin)


_ALL = frozenset(Perm)
#: The platform's permissions per role. Capabilities add their own (`Capability.permissions`, e.g. cashback's
#: "claims"); the container combines both with `role_perms` and every Principal carries the result.
ROLE_PERMS: dict[Role, frozenset[str]] = {
    Role.OWNER: _ALL,
    Role.ADMIN: _ALL,
    Role.OPERATOR: frozenset({Perm.INBOX_VIEW, Perm.INBOX_REPLY}),
    Role.MODERATOR: frozenset({Perm.INBOX_VIEW}),
    Role.ANALYST: frozenset({Perm.INBOX_VIEW, Perm.FLOWS_VIEW}),
}


def role_perms(grants: Iterable[Permission]) -> dict[Role, frozenset[str]]:
    """The platform's permissions plus the capabilities': owner and admin get every one, another role a
    capability's permission when the declaration names it."""
    out = {role: set(perms) for role, perms in ROLE_PERMS.items()}
    for grant in grants:
        for role in Role:
            if role in (Role.OWNER, Role.ADMIN) or role.value in grant.roles:
                out[role].add(grant.key)
    return {role: frozenset(perms) for role, perms in out.items()}


LANGUAGES = ("ru", "en", "es")
MIN_PASSWORD = 10
SESSION_IDLE = timedelta(hours=12)
SESSION_MAX = timedelta(days=7)
# Sign-in throttling (see `authenticate`). Failures are counted within THROTTLE_WINDOW:
# - per (login, address): THROTTLE_PAIR_FREE free tries, then a wait of 2^(n-FREE) s after the last failure,
#   capped at THROTTLE_PAIR_MAX_DELAY — the owner's own typos cost seconds, a guesser's grow to minutes;
# - per login from any address: THROTTLE_PER_LOGIN free, then THROTTLE_LOGIN_DELAY between tries — a short
#   delay, so a stranger elsewhere can slow the owner down by seconds but never lock them out;
# - per address across logins: at most THROTTLE_PER_IP (a password sprayer's cap).
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_PAIR_FREE = 3
THROTTLE_PAIR_MAX_DELAY = timedelta(minutes=5)
THROTTLE_PER_LOGIN = 10
THROTTLE_LOGIN_DELAY = timedelta(seconds=2)
THROTTLE_PER_IP = 50
_LOCK_LOGIN, _LOCK_IP = 7270101, 7270102  # PostgreSQL advisory lock classes of the throttle
_TOUCH_EVERY = timedelta(minutes=1)
_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class LoginRefused(OtklikError):
    status_code = 401


class LoginThrottled(OtklikError):
    status_code = 429

    def __init__(self, seconds: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {seconds} s")
        self.seconds = seconds


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user of one request."""

    user_id: int
    login: str
    name: str
    role: Role
    language: str
    session_id: str
    csrf_token: str
    perms: frozenset[str] = frozenset()  # of the role, the capabilities' included (`role_perms`)

    def can(self, perm: str) -> bool:
        return perm in self.perms

    @property
    def actor(self) -> str:
        return f"user:{self.login}"


def parse_role(raw: str) -> Role:
    try:
        return Role(raw.strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown role {raw!r}; one of: {', '.join(r.value for r in Role)}") from None


def clean_login(raw: str) -> str:
    login = (raw or "").strip().lower()
    if not (1 <= len(login) <= 120) or any(c.isspace() for c in login) or not login.isprintable():
        raise InvalidInput("a login is 1-120 printable characters without spaces")
    return login


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InvalidInput("a password is at most 1024 characters")
    return password


def new_password() -> str:
    return secrets.token_urlsafe(12)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _hash(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(hashed: str, password: str) -> bool:
    def run() -> bool:
        try:
            return _hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(run)


async def count_users(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count(User.id))) or 0)


async def create_user(
    db: Database,
    login: str,
    role: Role | str,
    *,
    password: str | None = None,
    name: str = "",
    language: str = "ru",
    actor: str = "system",
) -> tuple[int, str]:
    """Create a user; returns (id, password) — a generated password when none was given."""
    login = clean_login(login)
    role = parse_role(role) if isinstance(role, str) else role
    if language not in LANGUAGES:
        raise InvalidInput(f"language is one of {', '.join(LANGUAGES)}")
    password = check_password(password) if password is not None else new_password()
    hashed = await _hash(password)
    now = utcnow()
    async with db.write() as session:
        if await session.scalar(select(User.id).where(User.login == login)) is not None:
            raise Conflict(f"user {login!r} exists")
        user = User(
            login=login,
            name=name.strip()[:200],
            role=role.value,
            language=language,
            password_hash=hashed,
            active=True,
            created_at=now,
            password_changed_at=now,
        )
        session.add(user)
        await session.flush()
        audit(session, actor, "user.created", "user", user.id, {"login": login, "role": role.value}, now=now)
        return int(user.id), password


async def set_password(db: Database, login: str, password: str | None = None, *, actor: str = "system") -> str:
    """Set (or generate) a new password; every session of the user ends."""
    login = clean_login(login)
    password = check_password(password) if password is not None else new_password()
    hashed = await _hash(password)
    now = utcnow()
    async with db.write() as session:
        user = (await session.execute(select(User).where(User.login == login))).scalar_one_or_none()
        if user is None:
            raise NotFound(f"no user {login!r}")
        user.password_hash = hashed
        user.password_changed_at = now
        await session.execute(delete(AdminSession).where(AdminSession.user_id == user.id))
        await session.execute(delete(LoginFailure).where(LoginFailure.login == login))
        audit(session, actor, "user.password_reset", "user", user.id, {"login": login}, now=now)
    return password


async def update_user(
    db: Database,
    user_id: int,
    *,
    actor: Principal | None,
    role: str | None = None,
    active: bool | None = None,
    language: str | None = None,
    name: str | None = None,
) -> None:
    """Change a user's role, activity, language or name. Only an owner may touch owners or make one."""
    async with db.write() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise NotFound("no such user")
        changes: dict[str, object] = {}
        touches_owner = user.role == Role.OWNER or (role is not None and parse_role(role) == Role.OWNER)
        if actor is not None and actor.role != Role.OWNER and touches_owner:
            raise Forbidden("only an owner can change an owner or grant the owner role")
        if role is not None:
            new_role = parse_role(role)
            if user.role == Role.OWNER and new_role != Role.OWNER:
                await _keep_an_owner(session, user.id)
            changes["role"] = new_role.value
        if active is not None:
            if not active and user.role == Role.OWNER:
                await _keep_an_owner(session, user.id)
            if not active and actor is not None and actor.user_id == user.id:
                raise InvalidInput("you cannot deactivate yourself")
            changes["active"] = active
        if language is not None:
            if language not in LANGUAGES:
                raise InvalidInput(f"language is one of {', '.join(LANGUAGES)}")
            changes["language"] = language
        if name is not None:
            changes["name"] = name.strip()[:200]
        for key, value in changes.items():
            setattr(user, key, value)
        if changes.get("active") is False or "role" in changes:
            await session.execute(delete(AdminSession).where(AdminSession.user_id == user.id))
        if changes:
            audit(session, actor.actor if actor else "system", "user.updated", "user", user.id, changes)


async def _keep_an_owner(session: AsyncSession, leaving_id: int) -> None:
    others = await session.scalar(
        select(func.count(User.id)).where(User.role == Role.OWNER.value, User.active.is_(True), User.id != leaving_id)
    )
    if not others:
        raise InvalidInput("the last active owner cannot be removed or demoted")


def _lock_key(value: str) -> int:
    """A stable signed 32-bit key for `pg_advisory_xact_lock(class, key)`."""
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:4], "big", signed=True)


async def _reserve_attempt(db: Database, login: str, ip: str) -> None:
    """Check the limits and, when they allow a try, record it as a failure in the same write transaction.

    The row is written before the (slow) password check, so parallel requests see each other's tries:
    SQLite serialises writers (`BEGIN IMMEDIATE`); on PostgreSQL advisory locks on the login and on the
    address (always taken in that order) serialise the check-and-insert of tries that share either.
    Raises LoginThrottled with the seconds to wait.
    """
    now = utcnow()
    since = now - THROTTLE_WINDOW
    async with db.write() as session:
        if not db.is_sqlite:
            lock = text("SELECT pg_advisory_xact_lock(:cls, :key)")
            await session.execute(lock, {"cls": _LOCK_LOGIN, "key": _lock_key(login)})
            await session.execute(lock, {"cls": _LOCK_IP, "key": _lock_key(ip)})
        await session.execute(delete(LoginFailure).where(LoginFailure.login == login, LoginFailure.ts < since))
        recent = LoginFailure.ts >= since
        pair_n, pair_last = (
            await session.execute(
                select(func.count(LoginFailure.id), func.max(LoginFailure.ts)).where(
                    LoginFailure.login == login, LoginFailure.ip == ip, recent
                )
            )
        ).one()
        login_n, login_last = (
            await session.execute(
                select(func.count(LoginFailure.id), func.max(LoginFailure.ts)).where(
                    LoginFailure.login == login, recent
                )
            )
        ).one()
        ip_n, ip_first = (
            await session.execute(
                select(func.count(LoginFailure.id), func.min(LoginFailure.ts)).where(LoginFailure.ip == ip, recent)
            )
        ).one()
        free_at = now
        if pair_n >= THROTTLE_PAIR_FREE and pair_last is not None:
            delay = timedelta(seconds=2 ** min(pair_n - THROTTLE_PAIR_FREE, 20))
            free_at = max(free_at, pair_last + min(delay, THROTTLE_PAIR_MAX_DELAY))
        if login_n >= THROTTLE_PER_LOGIN and login_last is not None:
            free_at = max(free_at, login_last + THROTTLE_LOGIN_DELAY)
        if ip_n >= THROTTLE_PER_IP and ip_first is not None:
            free_at = max(free_at, ip_first + THROTTLE_WINDOW)
        if free_at > now:
            raise LoginThrottled(max(1, math.ceil((free_at - now).total_seconds())))
        session.add(LoginFailure(login=login, ip=ip, ts=now))


async def authenticate(db: Database, login: str, password: str, ip: str) -> User:
    """Check a password with throttling (see THROTTLE_*). Raises LoginRefused / LoginThrottled.

    The try is reserved (counted as a failure) before argon2 runs; a success removes it together with
    the earlier failures of this login from this address.
    """
    login = (login or "").strip().lower()[:120]
    ip = ip[:64]
    await _reserve_attempt(db, login, ip)
    async with db.read() as session:
        user = (await session.execute(select(User).where(User.login == login))).scalar_one_or_none()
    ok = await _verify(user.password_hash if user else _DUMMY_HASH, password[:1024])
    if not ok or user is None or not user.active:
        async with db.write() as session:
            audit(session, f"anonymous@{ip}", "user.login_failed", "user", None, {"login": login}, now=utcnow())
        raise LoginRefused("wrong login or password")
    async with db.write() as session:
        # the reserved row is one of this login's failures from this address
        await session.execute(delete(LoginFailure).where(LoginFailure.login == login, LoginFailure.ip == ip))
    return user


async def start_session(db: Database, user: User, ip: str) -> str:
    """A fresh session for a signed-in user; returns the cookie token (only its digest is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.write() as session:
        session.add(
            AdminSession(
                id=_digest(token),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_seen_at=now,
                expires_at=now + SESSION_MAX,
                ip=ip[:64],
            )
        )
        await session.execute(update(User).where(User.id == user.id).values(last_login_at=now))
        await session.execute(delete(AdminSession).where(AdminSession.expires_at < now))
        audit(session, f"user:{user.login}", "user.login", "user", user.id, {"ip": ip[:64]}, now=now)
    return token


async def load_session(
    db: Database, token: str | None, perms: Mapping[Role, frozenset[str]] = ROLE_PERMS
) -> Principal | None:
    """The principal for a cookie value, or None when absent, unknown, expired, idle or deactivated."""
    if not token or len(token) > 200:
        return None
    sid = _digest(token)
    now = utcnow()
    async with db.read() as session:
        row = (
            await session.execute(
                select(AdminSession, User).join(User, User.id == AdminSession.user_id).where(AdminSession.id == sid)
            )
        ).first()
    if row is None:
        return None
    sess, user = row
    if not user.active or sess.expires_at <= now or sess.last_seen_at + SESSION_IDLE <= now:
        await end_session(db, token)
        return None
    if now - sess.last_seen_at > _TOUCH_EVERY:
        async with db.write() as session:
            await session.execute(update(AdminSession).where(AdminSession.id == sid).values(last_seen_at=now))
    return Principal(
        user_id=int(user.id),
        login=user.login,
        name=user.name or user.login,
        role=Role(user.role),
        language=user.language,
        session_id=sid,
        csrf_token=sess.csrf_token,
        perms=perms[Role(user.role)],
    )


async def end_session(db: Database, token: str) -> None:
    async with db.write() as session:
        await session.execute(delete(AdminSession).where(AdminSession.id == _digest(token)))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
