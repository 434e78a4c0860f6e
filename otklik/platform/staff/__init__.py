"""Staff (executives) and their notifications: a platform piece every capability may use (docs/staff.md).

- `members`: who they are (name, e-mail, Telegram chat id, active, the packs they serve, rule keys);
  `add_member`, `update_member`, `remove_member`, `list_members` — validated, audited.
- `assign`: `assign(session, pack, keys=…)` picks the member for a new order/booking/lead: a member named
  for one of the keys (a rule), else a round robin among the pack's active members; the rotation is a row
  (`staff_rotation`) locked in the caller's transaction, so it is fair across restarts and processes.
- `outbox`: `notify(session, members, StaffMessage(…))` writes one row per member and transport in the
  caller's transaction; the worker's `staff-notify` job (`StaffNotifier`) delivers them with retries.
- `transports`: the `StaffTransport` protocol and the built-in Telegram and SMTP transports
  (`build_transports`); another (WhatsApp) is one more entry in that registry.
"""
