"""Schemas both sides share: the ``[[sources]]`` tables and their discard filters (agent.toml
and central config alike) and the central config document the manager pushes and the agent
applies."""
