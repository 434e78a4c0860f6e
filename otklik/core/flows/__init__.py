"""Flows: scenario graphs stored as data (YAML), validated, and run by a pure interpreter."""
