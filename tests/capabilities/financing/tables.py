"""The issue's rates table, as YAML and as JSON (the same keys)."""

ISSUE_YAML = """\
currency: ARS
iva_on_interest: 21        # percent of the interest; 0 = none
max_installments: 18
min_installment: 1000      # no single payment below this
suggested: [3, 6, 9, 12]   # offered as buttons
plans:                     # bands; the band that contains n gives the rate
  - {from: 1, to: 3, tna: 0}
  - {from: 4, to: 6, tna: 48}
  - {from: 7, to: 12, tna: 62.5}
  - {from: 18, to: 18, coefficient: 1.95}
"""

ISSUE_JSON = """{
  "currency": "ARS", "iva_on_interest": 21, "max_installments": 18, "min_installment": 1000,
  "suggested": [3, 6, 9, 12],
  "plans": [{"from": 1, "to": 3, "tna": 0}, {"from": 4, "to": 6, "tna": 48},
            {"from": 7, "to": 12, "tna": 62.5}, {"from": 18, "to": 18, "coefficient": 1.95}]
}"""
