"""Load and benchmark tools for the chat.v1 services.

``chat-load`` (:mod:`chat_bench.load_cli`) calls any chat.v1 method under load, the way
ghz does for other APIs; ``chat-bench`` (:mod:`chat_bench.bench_cli`) measures the
ADR's criteria, gRPC against the HTTP/JSON baseline, and writes the report.
"""
