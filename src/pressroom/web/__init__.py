"""The web side readers reach: one WSGI application (one-click unsubscribe)."""
