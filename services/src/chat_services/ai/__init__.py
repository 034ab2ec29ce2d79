"""AIService: streamed completions through a pluggable provider; a local grounded one by default."""
