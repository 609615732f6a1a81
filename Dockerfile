# syntax=docker/dockerfile:1
# The EnvGen operator image: the envgen package without the `trainer` extra (no torch, crafter or procgen; the
# training Jobs run trainer_image/Dockerfile). Build from the repository root:
#   docker build -t envgen-operator:0.1.0 .
# or without a registry (a Debian root filesystem and buildah): scripts/build_images.sh
# BASE is any image with Python 3.11 as `python` (python:3.11-slim, or the Debian base that script makes).
# The Helm chart (charts/envgen-operator) runs it as `envgen operator ...` with uid 10001 and a read-only root.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/envgen
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY operator ./operator
RUN /opt/envgen/bin/pip install -c constraints.txt . \
    && /opt/envgen/bin/python -c "import envgen.cli" \
    && ! /opt/envgen/bin/pip show torch crafter procgen-mirror >/dev/null 2>&1

FROM ${BASE}
LABEL org.opencontainers.image.title="envgen-operator" \
      org.opencontainers.image.description="Kopf operator for EnvGenRun: LLM-designed training environments" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/envgen/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 envgen \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin envgen
COPY --from=build /opt/envgen /opt/envgen
USER 10001:10001
# 8080: Prometheus /metrics; 8081: Kopf liveness /healthz.
EXPOSE 8080 8081
ENTRYPOINT ["envgen"]
CMD ["operator"]
