"""What the server is doing: Prometheus metrics and OpenTelemetry traces, attached through grpclib events."""
