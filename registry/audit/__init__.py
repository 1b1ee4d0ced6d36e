"""Audit: proof that the log is whole and the views are its replay.

Owns: verification of the chain, the library's copy of each event and a replay of the
views (`verify`), export/import of the log as CloudEvents NDJSON (`transfer`), signed
checkpoints and Merkle proofs served from the log's tree (`checkpoints`), and the
auditor's side of them, free of any storage code (`proofs`).
May import `events`, `registry.log` and `registry.views`.
"""
