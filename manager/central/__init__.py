"""Central configuration: documents per group and per agent, revisions, push and status.

- ``document``: parse and check documents; merge groups then agent overrides into an agent's
  effective config (checked with the agent's own parser).
- ``store``: revisions (monotonic number + content hash) and per-agent desired/applied status in
  the manager database.
- ``distributor``: pushes effective configs to connected agents and records their status.
- ``wazuh_import``: ossec.conf ``<wodle name="aws-s3">`` → central TOML.
"""
