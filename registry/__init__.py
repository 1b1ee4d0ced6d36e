"""The application: commands, the event store and its global log, views, feeds and audit.

Sub-packages (each may import `events` and the packages listed before it, never Flask or `api`):
- `registry.log`: the event store, the global log with its hash chain, the one place that opens connections.
- `registry.views`: the bitemporal projection of the log (rows, bulk load) and the reader of views.
- `registry.feeds`: the log follower, Atom, iCalendar, webhook subscriptions and delivery.
- `registry.audit`: verification of the log and views, export and import.
Beside them: `settings` (read once from the environment), `service` (the commands: the write
path), `bootstrap` (wires a Registry together), `tokens`, `seed`, `errors`, `clock`.
"""
