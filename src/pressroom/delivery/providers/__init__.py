"""Mail providers, chosen by name (``sending.provider`` / ``--provider``); see ``base.Provider``.

Each module here defines one ``Provider`` subclass and registers it with ``@register``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pressroom import registry as _registries
from pressroom.registry import Registry

if TYPE_CHECKING:  # importing the package (config validation looks names up) loads no adapter
    from pressroom.delivery.providers.base import Provider

registry = cast("Registry[type[Provider]]", _registries.providers)
register = registry.register
get = registry.get
