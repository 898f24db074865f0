"""The authenticated HTTP API (`kb serve`): FastAPI app, API keys with roles, tenant isolation."""

from kb.api.app import create_app

__all__ = ["create_app"]
