"""Every capability and channel kind of the product, in one place. Adding one = its folder + one line here.

The entry points (bootstrap, the web app, the CLI) iterate these lists; none of them names a capability
or a channel kind. Importing this module is cheap: declarations only (code is referenced by import string).
"""

from __future__ import annotations

from otklik.capabilities import bookings, care, cashback, crm, financing, inbox, metrics, outreach, sales
from otklik.channels import api, console, instagram, telegram, webchat, whatsapp, wildberries, zenvia
from otklik.conversations import capability as kernel
from otklik.platform.plugins import Capability, ChannelKind

CAPABILITIES: tuple[Capability, ...] = (
    kernel.CAPABILITY,
    inbox.CAPABILITY,
    care.CAPABILITY,
    cashback.CAPABILITY,
    financing.CAPABILITY,
    sales.CAPABILITY,
    metrics.CAPABILITY,
    crm.CAPABILITY,
    bookings.CAPABILITY,
    outreach.CAPABILITY,
)
CHANNEL_KINDS: tuple[ChannelKind, ...] = (
    webchat.KIND,
    api.KIND,
    telegram.KIND,
    console.KIND,
    wildberries.KIND,
    whatsapp.KIND,
    zenvia.KIND,
    instagram.KIND,
)
