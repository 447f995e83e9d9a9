"""Where records come from: ``config`` (the ``[[sources]]`` schema), ``s3`` (CloudTrail
buckets, with ``layout`` for the key layout and ``aws`` the only AWS SDK adapter), ``directory``
(files on disk), ``filters`` (discard rules), ``records`` (an object's records as the raw bytes
to forward) and ``pipeline`` (one object into the spool)."""
