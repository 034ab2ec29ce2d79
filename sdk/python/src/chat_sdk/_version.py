"""The SDK's version; derived from the schema release it was built from."""

__version__ = "1.0.0.dev0"
