#!/usr/bin/env bash
# Installs the real servers the integration tests start on loopback (Debian packages: prometheus, alertmanager,
# node exporter as a scrape target), the openssl command the TLS tests make certificates with, Debian's
# chromium for the status page test, and Debian's Go toolchain for `go tool pprof`, the real pprof, which reads the
# pprof extension's profiles in its test, when possible.
# Tests that need a server that could not be installed skip with the reason; they never pass silently.
set -u
packages=(prometheus prometheus-alertmanager prometheus-node-exporter openssl chromium golang-go)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "note: not root or no apt-get; cannot install ${missing[*]}: tests that need them will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
# The packages' own services are not wanted: tests start the binaries themselves on loopback ports.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || echo "note: apt-get install ${missing[*]} failed: tests that need them will skip" >&2
for service in prometheus prometheus-alertmanager prometheus-node-exporter; do
    (command -v systemctl >/dev/null && systemctl stop "$service") >/dev/null 2>&1 || true
    (command -v service >/dev/null && service "$service" stop) >/dev/null 2>&1 || true
done
exit 0
