"""Where records come from: ``config`` (the ``[[sources]]`` schema), ``s3`` (CloudTrail
buckets, with ``layout`` for the key layout and ``aws`` the only boto3 adapter), ``directory``
(files on disk), ``filters`` (discard rules) and ``pipeline`` (one object into the spool)."""
