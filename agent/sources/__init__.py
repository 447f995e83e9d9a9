"""Where records come from: ``s3`` (CloudTrail buckets, with ``layout`` for the key layout and
``aws`` the only AWS SDK adapter), ``directory`` (files on disk), ``records`` (an object's records
as the raw bytes to forward) and ``pipeline`` (one object into the spool). Their configuration
(the ``[[sources]]`` schema and discard filters) is ``trailwarden.common.schema``, shared with the
manager, which validates central config with it."""
