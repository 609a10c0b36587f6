"""Layer 4: the FastAPI JSON API. Build it with :func:`controlplane.api.app.create_app`."""
