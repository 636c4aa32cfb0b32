"""Mail providers, chosen by name (``sending.provider`` / ``--provider``); see ``base.Provider``.

Each module here defines one ``Provider`` subclass and registers it with ``@register``.
"""

from __future__ import annotations

from pressroom.providers.base import Provider
from pressroom.registry import Registry

registry: Registry[type[Provider]] = Registry("provider", __name__)
register = registry.register
get = registry.get
