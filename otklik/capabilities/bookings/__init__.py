"""Bookings (issue 20): a salon's schedule, computed slots, bookings with no double booking, reminders and
leads.

- `schedule.py` pure slot arithmetic on a 15-minute grid (staff hours, breaks, days off from
  platform/business_hours schedules)
- `models.py`, `migrations/` (branch `bookings`): services, staff, resources, bookings, leads, reminders
- `service.py` the use cases: slots, book (locked check), move, status changes, reminders planned, leads;
  every change emits its `booking.*` / `lead.created` event (docs/bookings.md)
- `api.py`  `POST /api/lead` (API token, scope `leads`); reading `GET /api/v1/bookings[/{id}]` (`bookings.read`) and
  `GET /api/v1/bookings/leads[/{id}]` (`leads.read`)
- `chat.py`, `jobs.py`: the bot's first message to a lead, reminders and the answers to their buttons
- `admin.py` `/admin/bookings`: the bookings list with filters, no-show marking, manual booking
See docs/bookings.md.
"""

from otklik.platform.plugins import Capability, JobSpec, NavEntry, Permission

BOOKINGS = "bookings.manage"  # see and change bookings (owner, admin, operator)

CAPABILITY = Capability(
    name="bookings",
    actions="otklik.capabilities.bookings.actions:ACTIONS",
    jobs=(JobSpec("bookings-reminders", "otklik.capabilities.bookings.jobs:reminders_job"),),
    api=("otklik.capabilities.bookings.api:router",),
    permissions=(Permission(BOOKINGS, frozenset({"operator"})),),
    admin=("otklik.capabilities.bookings.admin:router",),
    nav=(NavEntry("bookings.nav", "/admin/bookings", BOOKINGS, 58),),
    migrations="otklik.capabilities.bookings:migrations",
    templates="otklik.capabilities.bookings:templates",
    locales="otklik.capabilities.bookings:locales",
    demo="otklik.capabilities.bookings.demo:seed",
    demo_tables=("bookings_bookings", "bookings_staff", "bookings_services", "bookings_resources"),
    erase="otklik.capabilities.bookings.service:erase_contact",
    counters="otklik.capabilities.bookings.counters:COUNTERS",
)
