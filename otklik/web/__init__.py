"""HTTP entry point: web chat, webhooks, REST API and admin (FastAPI)."""
