"""The `registry` command line and the server launcher.

The only package that imports `api` (to serve it); everything else it asks of `registry`.
"""
