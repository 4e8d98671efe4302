# otelgw: small runtime image. Build: docker build -t otelgw .   Run: docker run -p 4317:4317 -p 4318:4318 otelgw
# The build stage is the full image: it has the C compiler for the optional extension (gateway/helpers/_spanscan.c).
FROM python:3.11 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY gateway ./gateway
COPY plugins ./plugins
RUN pip install --no-cache-dir --prefix=/install '.[hyperscan]'

FROM python:3.11-slim
COPY --from=build /install /usr/local
COPY configs /etc/otelgw
# The image's user owns /var/lib/otelgw: the admin token file (OTELGW_STATE_DIR) and file_storage queues go
# there, so the image runs with a read-only root filesystem when that path is a volume (as in configs/k8s).
RUN mkdir -p /var/lib/otelgw/queue && chown -R 10001:10001 /var/lib/otelgw && chmod -R 0700 /var/lib/otelgw
# The shipped configs listen on localhost unless told otherwise; in a container loopback is the container's own,
# so the image opens the OTLP, health and metrics endpoints explicitly. The admin endpoint stays on loopback.
ENV OTELGW_STATE_DIR=/var/lib/otelgw \
    OTELGW_GRPC_ENDPOINT=0.0.0.0:4317 \
    OTELGW_HTTP_ENDPOINT=0.0.0.0:4318 \
    OTELGW_HEALTH_ENDPOINT=0.0.0.0:13133 \
    OTELGW_METRICS_ADDRESS=0.0.0.0:8888 \
    OTELGW_PROMETHEUS_ENDPOINT=0.0.0.0:8889
# An unprivileged user, as in the Collector's images (numeric, so Kubernetes can check runAsNonRoot).
USER 10001:10001
# Every port the shipped configs use: OTLP gRPC and HTTP, self-metrics, the prometheus exporter (configs/kpi),
# health, admin (loopback by default; published only if OTELGW_ADMIN_ENDPOINT opens it).
EXPOSE 4317 4318 8888 8889 13133 13134
ENTRYPOINT ["otelgw"]
CMD ["run", "--config", "/etc/otelgw/default.yaml"]
