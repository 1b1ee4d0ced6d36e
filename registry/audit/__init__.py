"""Audit: proof that the log is whole and the views are its replay.

Owns: verification of the chain, the library's copy of each event and a replay of the
views (`verify`), and export/import of the log as CloudEvents NDJSON (`transfer`).
May import `events`, `registry.log` and `registry.views`.
"""
