"""Tooling for the chat schema registry: generation, drift checks and, later, governance.

The command line lives in :mod:`registry.cli` (``python -m registry``); nox sessions
call it so that every task a pipeline runs can also be run, and tested, on its own.
"""
