"""Vendored third-party schema (protovalidate's ``buf.validate``), generated into the standard target."""
