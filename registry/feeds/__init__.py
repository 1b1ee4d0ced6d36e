"""Feeds of new events: what integrators subscribe to.

Owns: the per-process follower of the log (`follower`), Atom archives (`atom`), the
meetings calendar (`calendar`), webhook subscriptions and their targets (`webhooks`,
`targets`) and delivery (`delivery`). May import `events`, `registry.log` and
`registry.views`.
"""
