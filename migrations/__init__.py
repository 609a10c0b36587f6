"""Alembic migrations of the control plane's SQL store (run through ``cplane db upgrade``)."""
