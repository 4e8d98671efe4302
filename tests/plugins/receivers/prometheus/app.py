"""A small prometheus_client app for the scrape tests: counters, gauges, histograms and summaries with known
values, served on a loopback port it picks itself and prints. Run as ``python app.py``; stopped by the test."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, start_http_server


def registry() -> CollectorRegistry:
    r = CollectorRegistry()
    requests = Counter("app_requests", "Requests served.", ["method", "code"], registry=r)
    requests.labels("GET", "200").inc(1234)
    requests.labels("POST", "500").inc(7)
    Gauge("app_queue_depth", "Jobs waiting.", registry=r).set(42.5)
    Gauge("app_temperature", "Machine room temperature.", unit="celsius", registry=r).set(-3.25)
    latency = Histogram("app_latency_seconds", "Request latency.", ["route"], buckets=(0.01, 0.1, 1.0, 10.0),
                        registry=r)
    for value in (0.005, 0.05, 0.05, 0.5, 2.0, 20.0):
        latency.labels("/orders").observe(value)
    latency.labels("/health").observe(0.001)
    size = Summary("app_response_size_bytes", "Response sizes.", registry=r)
    for value in (100, 250, 4096):
        size.observe(value)
    return r


if __name__ == "__main__":
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry())
    print(server.server_port, flush=True)
    while True:
        time.sleep(60)
