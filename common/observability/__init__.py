"""What both sides expose to operators: the ``[metrics]`` config section (``config``) and the
small HTTP server for ``/metrics``, ``/healthz`` and ``/readyz`` (``http``). What each side
measures lives with it (``manager/observability.py``, ``agent/observability.py``)."""
