# otelgw: small runtime image. Build: docker build -t otelgw .   Run: docker run -p 4317:4317 -p 4318:4318 otelgw
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY plugins ./plugins
RUN pip install --no-cache-dir --prefix=/install '.[hyperscan]'

FROM python:3.11-slim
COPY --from=build /install /usr/local
COPY configs /etc/otelgw
# An unprivileged user, as in the Collector's images.
USER 10001
EXPOSE 4317 4318 8888 13133
ENTRYPOINT ["otelgw"]
CMD ["run", "--config", "/etc/otelgw/default.yaml"]
