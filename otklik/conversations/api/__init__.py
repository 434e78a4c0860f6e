"""The kernel's REST API (`/api/v1/contacts`, `/api/v1/conversations`, `/api/v1/flows`; docs/api.md), declared by
the kernel's capability (`conversations/capability.py`) and mounted by the web app like every capability's."""
