"""Article sources, chosen by ``type:`` in config.yaml (see ``base.Source``).

Each module here defines one ``Source`` subclass and registers it with ``@register``.
"""

from __future__ import annotations

from pressroom.registry import Registry
from pressroom.sources.base import Source

registry: Registry[type[Source]] = Registry("source type", __name__)
register = registry.register
get = registry.get
