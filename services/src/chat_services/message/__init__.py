"""MessageService: stored messages on SQLite, live fan-out through an in-process hub."""
