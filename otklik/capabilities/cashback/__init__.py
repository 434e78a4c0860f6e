"""Cashback for reviews: campaigns, the buyer's claim (checks against Wildberries), moderation, payouts.

- `rules.py`     pure rules: claim stages, payout details (SBP phone + bank, card with Luhn), masking
- `texts.py`     the default texts of every stage (a campaign may override each)
- `campaigns.py` campaigns in the database: create, edit, which one runs, budget and count caps
- `images.py`    is the upload a real image within limits; perceptual hash
- `ocr.py`       Tesseract OCR (when installed): text, stars, dates
- `feedbacks.py` where WB reviews come from (`FeedbackSource`), cached
- `matching.py`  fuzzy match of the OCR text to the seller's WB reviews
- `checks.py`    every automatic check of a screenshot and the outcome
- `claims.py`    the buyer's journey as a state machine over the claim row
- `moderation.py` approve / reject / ask for a better screenshot (audited, buyer notified)
- `payouts.py`   encrypted payout details, registry export, mark paid, erasure
- `funnel.py`    campaign funnel figures
- `actions.py`   flow actions (`cashback.step`, `cashback.nudge`), `jobs.py` the periodic erasure
"""

from otklik.platform.plugins import Capability, JobSpec, NavEntry, Permission

CLAIMS = "claims"  # moderation and payouts
DASHBOARDS = "dashboards"  # campaign funnels (shared with care's dashboards)

CAPABILITY = Capability(
    name="cashback",
    actions="otklik.capabilities.cashback.actions:ACTIONS",
    reactions="otklik.capabilities.cashback.actions:REACTIONS",
    jobs=(JobSpec("cashback-erase", "otklik.capabilities.cashback.jobs:erase_job"),),
    permissions=(
        Permission(CLAIMS, frozenset({"moderator"})),
        Permission(DASHBOARDS, frozenset({"moderator", "analyst"})),
    ),
    admin=("otklik.capabilities.cashback.admin:router", "otklik.capabilities.cashback.admin_claims:router"),
    nav=(
        NavEntry("cashback.nav", "/admin/campaigns", "settings", 40, also=("/admin/claims", "/admin/payouts")),
        NavEntry("cashback.nav", "/admin/claims", CLAIMS, 41, also=("/admin/payouts", "/admin/campaigns")),
    ),
    models="otklik.capabilities.cashback.models",
    demo="otklik.capabilities.cashback.demo:seed",
    demo_tables=("cashback_claims", "cashback_campaigns"),
    templates="otklik.capabilities.cashback:templates",
    locales="otklik.capabilities.cashback:locales",
    static="otklik.capabilities.cashback:static",
    counters="otklik.capabilities.cashback.counters:COUNTERS",
)
