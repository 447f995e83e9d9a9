"""Outputs: where alerts go besides the store — alerts.json and archives.json for log shippers,
webhooks, Slack and e-mail — each fed from the store by its own delivered-cursor (delivery.py)."""
