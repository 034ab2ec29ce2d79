"""Who is calling and what they may do: TLS, tokens, identities, scopes and rate limits.

Everything here attaches to the server through grpclib's ``RecvRequest`` event
(:mod:`chat_services.security.guard`); handlers only read the caller's identity
through :func:`chat_services.security.identity.current_identity`.
"""
