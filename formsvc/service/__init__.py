"""Use cases of the service, shared by the API, the web UI, the worker and the CLI."""
