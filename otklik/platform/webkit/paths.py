"""Where the web layer's shared files live (templates, static files, admin locale strings)."""

from __future__ import annotations

from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
LOCALES = WEB / "admin" / "locales"
