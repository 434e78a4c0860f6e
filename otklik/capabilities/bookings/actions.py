"""The flow actions of the capability: `bookings.talk` (slow: it books through its own transactions)."""

from otklik.capabilities.bookings.talk import talk
from otklik.platform.plugins import ActionSpec

ACTIONS = (ActionSpec("bookings.talk", talk),)
