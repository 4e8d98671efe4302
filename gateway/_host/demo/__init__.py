"""``otelgw demo``: the shipped packs at work on realistic traffic (``traffic``), with the packs' windows sped up
on request (``speed``), started and stopped by ``cli``."""
