"""The manager's analysis pipeline: ``decode`` -> ``rules`` -> ``correlate`` -> alert.

* ``decode.decode_record``: a CloudTrail record becomes Wazuh's AWS-integration event.
* ``rules``: Wazuh's XML rule language (model, loader, pattern languages on RE2, CDB lists,
  the tree matcher); ``rules.load_ruleset`` / ``rules.default_ruleset_paths``.
* ``correlate``: frequency/timeframe windows over CloudTrail event time, bounded.
* ``pipeline.Analyzer``: the three together, one record at a time, raising ``Alert``s.
"""
