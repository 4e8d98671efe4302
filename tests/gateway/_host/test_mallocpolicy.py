"""gateway._host.mallocpolicy: request-sized buffers are reused, not faulted in from the kernel every time.

Each case runs ``bench.malloc``'s server: a real gRPC server (grpc.aio, as the otlp receiver) in a fresh
interpreter, since the settings are process-wide, answering the realistic pipeline's requests (about 260 kB); it
reports the page faults they took after a warm-up."""

from __future__ import annotations

import platform

import pytest

from bench.malloc import serve_once
from bench.pipeline_workload import make_payloads
from gateway._host import mallocpolicy

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the settings are glibc's")

PAYLOADS = make_payloads(8)


def faults_per_request(mode: str, **env: str) -> tuple[bool, float]:
    result = serve_once(mode, PAYLOADS, 500, env)
    return bool(result["applied"]), result["faults"] / result["requests"]


def test_with_the_policy_a_grpc_server_reuses_request_buffers_instead_of_faulting_them_in() -> None:
    (off, untuned), (on, tuned) = faults_per_request("off"), faults_per_request("on")
    assert on and not off
    # Untuned, many of each request's pages come fresh from the kernel (13 to over 100, with the timing); tuned,
    # two at most.
    assert untuned > 5
    assert tuned * 3 < untuned


def test_the_environment_switch_leaves_glibc_defaults() -> None:
    assert faults_per_request("on", OTELGW_MALLOC_TUNING="off")[0] is False


def test_install_is_idempotent() -> None:
    first = mallocpolicy.install()
    assert mallocpolicy.install() is first and mallocpolicy.applied() is first
