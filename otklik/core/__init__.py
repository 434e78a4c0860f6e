"""The pure domain of otklik: no framework, database or transport imports (enforced by import-linter)."""
