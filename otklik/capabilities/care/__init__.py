"""Care for unhappy buyers and review insights (issue 7).

- Care flows (pack `care-ru`) use the actions in `actions.py`: `wb.check_barcode`, `care.record_incident`.
- `catalog` caches the seller's WB cards (barcode -> product, size); `sync` runs the WB sync job.
- `incidents`: the incident records and the dashboard figures (counts, share resolved by the bot,
  ratings, top phrases, CSV).
- `reviews`: imported WB feedbacks, their classification (`classify`), reply drafts, approval and
  posting (`replies`).

See docs/care.md. Modules are imported directly (`from otklik.capabilities.care.incidents.incident_stats`) import  as incident_stats`).
"""
