"""Wiring: a Registry from settings, with its tables; and the explicit upgrade step.

`bootstrap()` is cheap: it opens the store and makes any missing table. Bringing the
views to this version's layout (a rebuild, when the store was written by an older
version) is `upgrade()`, which `registry serve`, `project`, `rebuild` and the commands
that write run before they start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from registry.errors import RegistryError
from registry.log import merkle
from registry.log.database import setup_lock
from registry.service import Registry
from registry.settings import Settings

log = logging.getLogger(__name__)


class StoreOutdated(RegistryError):
    title = "Store needs an upgrade"


def bootstrap(settings: Settings | None = None) -> Registry:
    """A Registry over the store `settings` name (default: from the environment)."""
    settings = settings or Settings.from_env()
    with setup_lock(settings.store):  # creating tables: one process at a time
        registry = Registry(settings)
        registry.database.create_tables()
        registry.webhooks.create_tables()
        registry.views_current = registry.projection.prepare()
    return registry


def upgrade(registry: Registry, progress: Callable[[int], object] | None = None) -> int:
    """Bring the views to this version's layout and up to the log; returns their position."""
    with setup_lock(registry.config):
        position = registry.projection.upgrade(progress)
    merkle.backfill(registry.database)  # a store logged before the tree existed gets its tree
    registry.views_current = True
    return position


def require_current(registry: Registry) -> None:
    """Raises StoreOutdated when the views are in an older layout than this version reads."""
    if not registry.views_current:
        raise StoreOutdated("the store's views are in an older layout: run `registry serve`, "
                            "`registry project` or `registry rebuild` once to upgrade them")
