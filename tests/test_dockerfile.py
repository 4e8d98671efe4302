"""The Dockerfile: EXPOSE covers every port the shipped configs use, the user is numeric and non-root, and the
paths the configs write under (state dir, queues) are made and owned by that user. No docker daemon needed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def final_stage() -> str:
    return DOCKERFILE.split("\nFROM ")[-1]


def test_every_port_of_the_shipped_configs_is_exposed() -> None:
    exposed = {int(p) for line in final_stage().splitlines() if line.startswith("EXPOSE")
               for p in line.split()[1:]}
    used = set()
    for path in [*ROOT.glob("configs/*.yaml"), *ROOT.glob("configs/kpi/*.yaml"), *ROOT.glob("configs/k8s/*.yaml")]:
        # listen addresses: 0.0.0.0, or an OTELGW_*_ENDPOINT/ADDRESS default (exporter targets are not ours)
        text = path.read_text()
        used |= {int(p) for p in re.findall(r"0\.0\.0\.0:(\d+)", text)}
        used |= {int(p) for p in re.findall(r"OTELGW_\w+_(?:ENDPOINT|ADDRESS):-[\w.]+:(\d+)", text)}
    assert used - exposed == set(), f"not EXPOSEd: {sorted(used - exposed)}"


def test_the_user_is_numeric_non_root_and_owns_its_writable_paths() -> None:
    stage = final_stage()
    user = re.search(r"^USER (\d+)(?::(\d+))?$", stage, re.MULTILINE)
    assert user is not None and int(user.group(1)) != 0
    assert "OTELGW_STATE_DIR=/var/lib/otelgw" in stage
    chown = re.search(r"chown -R (\d+):(\d+) /var/lib/otelgw", stage)
    assert chown is not None and chown.group(1) == user.group(1)
    assert stage.index("chown") < stage.index("USER ")  # done as root, before switching
    for path in ("/var/lib/otelgw", "/var/lib/otelgw/queue"):
        assert path in stage.split("mkdir -p", 1)[1].split("&&")[0]
