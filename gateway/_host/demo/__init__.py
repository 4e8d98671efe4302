"""``otelgw demo``: the shipped packs at work on realistic traffic (``traffic``), with the packs' windows sped up
on request (``speed``), started and stopped by ``cli``.

The traffic is sent with the OpenTelemetry SDK, which is not a dependency of the gateway itself (the ``demo``
extra): ``cli`` imports ``traffic`` only when the demo runs, so every other command works without it."""

#: The traffic the demo can play.
SCENARIOS = ("callcenter", "llm-agent", "crm")
