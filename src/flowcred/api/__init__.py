"""The HTTP service (FastAPI). Built by :func:`flowcred.api.app.create_app`."""
