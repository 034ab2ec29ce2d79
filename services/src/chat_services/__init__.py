"""Reference implementation of every chat.v1 service on grpclib and the installed chat-sdk.

Layout: one package per service (``message``, ``ai``, ``rag``, ``plugin``), each with a
thin ``service.py`` (gRPC handlers: decode, call the domain, encode, map errors) over
domain modules that know nothing of gRPC; ``server.py`` assembles them with health,
reflection and graceful shutdown; ``cli.py`` is the ``chat-services`` command.
"""
