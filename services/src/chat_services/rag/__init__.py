"""RAGService: documents split into passages, embedded locally, searched exactly on SQLite."""
