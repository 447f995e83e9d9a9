"""Outputs: where alerts go besides the store (the alerts JSON lines file for log shippers)."""
