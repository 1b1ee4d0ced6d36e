"""The views: a bitemporal projection of the global log, and the reader that serves it.

Owns: the projection and its tracking (`projection`), the rows it writes (`rows`, `tables`),
rebuilds by bulk load (`bulk_load`) and reads of record views, lists, history and the
timeline (`reader`). The fold itself is pure and lives in `events.temporal`.
May import `events` and `registry.log`.
"""
