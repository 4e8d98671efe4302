"""Config of the ``resourcedetection`` processor, with the Collector's keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway import ConfigError, Duration

DETECTORS = ("env", "system", "docker", "k8snode")


@dataclass(frozen=True)
class AttributeToggle:
    enabled: bool = True


@dataclass(frozen=True)
class SystemConfig:
    #: Where host.name comes from, first that answers wins: os (the kernel's host name), dns (its FQDN).
    hostname_sources: list[str] = field(default_factory=lambda: ["dns", "os"])
    #: Turn attributes on or off: host.name, host.id, os.type (on); host.arch, os.description (off).
    resource_attributes: dict[str, AttributeToggle] = field(default_factory=dict)

    def validate(self) -> None:
        bad = [s for s in self.hostname_sources if s not in ("os", "dns")]
        if bad:
            raise ConfigError(f"hostname_sources: must be os or dns, got {', '.join(map(repr, bad))}")


@dataclass(frozen=True)
class DockerConfig:
    #: The Docker Engine API socket. Default /var/run/docker.sock.
    endpoint: str = "unix:///var/run/docker.sock"

    def validate(self) -> None:
        if not self.endpoint.startswith("unix://"):
            raise ConfigError(f"endpoint: only unix:// sockets are supported, got {self.endpoint!r}")


@dataclass(frozen=True)
class K8sNodeConfig:
    #: Environment variable holding the node name (set from the downward API, spec.nodeName).
    node_from_env_var: str = "K8S_NODE_NAME"
    #: Environment variable holding the node's UID, when the manifest provides one. Default K8S_NODE_UID.
    node_uid_from_env_var: str = "K8S_NODE_UID"
    #: Accepted for Collector compatibility; nothing is asked of the API server here.
    auth_type: str = "serviceAccount"


@dataclass(frozen=True)
class Config:
    #: Detectors run in order at start; with override false, the first one to find an attribute wins.
    detectors: list[str] = field(default_factory=list)
    #: true: detected attributes replace those already on the data. Default true.
    override: bool = True
    #: How long detection may take at start; detectors still running then are skipped (logged). Default 5s.
    timeout: Duration = 5.0
    system: SystemConfig = field(default_factory=SystemConfig)
    docker: DockerConfig = field(default_factory=DockerConfig)
    k8snode: K8sNodeConfig = field(default_factory=K8sNodeConfig)

    def validate(self) -> None:
        errors = []
        if not self.detectors:
            errors.append(f"detectors: at least one detector is required: {', '.join(DETECTORS)}")
        errors += [f"detectors::{i}: unknown detector {d!r}; valid detectors are: {', '.join(DETECTORS)}"
                   for i, d in enumerate(self.detectors) if d not in DETECTORS]
        if self.timeout <= 0:
            errors.append("timeout: must be > 0")
        if errors:
            raise ConfigError(errors)
