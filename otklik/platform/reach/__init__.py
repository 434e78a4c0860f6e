"""Reaching a person outside the chat — SMS and e-mail — a platform service every capability may use
(docs/reach.md).

- `service.reach(tx, contact_id, text, routes=("channel", "sms", "email"), dedup_key=…)`: one durable
  message, tried on each route in turn until one reaches the person; a row per attempt (`reach_attempts`:
  route, status queued/sending/sent/delivered/failed/uncertain, provider id, error); `attempts_of(db, key)`.
- `service.ReachWorker`: the worker's `reach` job (retries with back-off, the next route on failure, SMS.ru
  delivery status polling).
- `senders`: the `SmsSender` protocol, the SMS.ru connector and a generic HTTP one; e-mail goes through the
  staff SMTP transport (`platform.staff.transports.SmtpTransport`, `OTKLIK_SMTP_*`).
- `config`: the provider, its Vault-sealed secret and the sender name (Settings → SMS, `otklik sms`).
- `text`: E.164 phone numbers, e-mail addresses, SMS segments, masking.
"""
