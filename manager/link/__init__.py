"""The agent link: the AgentLink servicer (``service``), the live sessions it keeps
(``sessions``), and the peer identity read from a connection's certificate (``peer``)."""
