"""Conversations and their members: who may read, follow and post in a conversation."""
