"""What integration and e2e tests share: a real webhook receiver, a Prometheus scrape reader.

Importable as `support.*` from every test (pyproject's pytest `pythonpath` adds tests/).
"""
