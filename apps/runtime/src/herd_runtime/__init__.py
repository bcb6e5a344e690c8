"""Herd's in-container runtime: `herd-serve`, the gunicorn hooks, HTTP metrics and health."""
