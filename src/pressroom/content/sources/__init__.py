"""Article sources, chosen by ``type:`` in config.yaml (see ``base.Source``).

Each module here defines one ``Source`` subclass and registers it with ``@register``.
"""

from __future__ import annotations

from typing import cast

from pressroom import registry as _registries
from pressroom.content.sources.base import Source
from pressroom.registry import Registry

registry = cast(Registry[type[Source]], _registries.sources)
register = registry.register
get = registry.get
