"""The ingest path of a batch, top to bottom: ``ingest`` (a link hands over an agent batch) ->
``workers`` (analysis processes) -> ``batch_analysis`` (dedupe, decode, rules, correlation on one
batch) -> the store commit and outputs back in ``ingest``. ``setup`` builds them from manager.toml;
``analyzer`` builds what one analysis process needs."""
