"""The web admin UI: server-rendered pages (Jinja2) with htmx for partial updates, served by
the API's own app at ``/`` and ``/ui/...``. See docs/ui.md."""

from controlplane.ui.install import install

__all__ = ["install"]
