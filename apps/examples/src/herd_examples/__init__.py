"""Sample services for Herd: the same endpoints as a Flask (WSGI) and a FastAPI (ASGI) app."""
