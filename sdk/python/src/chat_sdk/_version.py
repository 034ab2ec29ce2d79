"""The SDK's version, written by `nox -s generate` from the releases: do not edit."""

__version__ = "2.1.1.dev0"
