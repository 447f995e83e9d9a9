"""Who the agents are: the registry (agents, tokens, groups, audit) and enrollment (token +
CSR -> certificate)."""
