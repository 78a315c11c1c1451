"""Access: who may do what: accounts, sessions and CSRF, agent and embed tokens, revocation, limits, headers."""
