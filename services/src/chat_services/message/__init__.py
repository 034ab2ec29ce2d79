"""MessageService: stored messages, live fan-out through a hub (shared across instances on PostgreSQL)."""
