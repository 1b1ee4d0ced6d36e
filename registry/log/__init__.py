"""The event store and the global log.

Owns: the `eventsourcing` Application and its `Record` aggregate (`store`), the global
log with positions, `recorded_at` and the hash chain (`chain`), the Merkle tree over the
log, stored as events commit (`merkle`), the one reader of the log (`reader`), and SQL
on either engine with the one place that opens connections (`database`).
May import `events`, `registry.settings`, `registry.errors`, `registry.clock`.
"""
