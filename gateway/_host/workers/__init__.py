"""``otelgw run --workers N``: N processes share the receiver ports; items are routed so that every trace is
handled by one of them; a supervisor restarts them and serves one view of the whole gateway. See docs/workers.md."""
