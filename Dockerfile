# syntax=docker/dockerfile:1
# quantops: one image, every service. `quantops serve <service>` runs one of them (what the
# Helm chart does); the default command runs the gateway.
#
#   docker build -t quantops .
#   docker run --rm -e QUANTOPS_NATS_URL=nats://host:4222 quantops serve executor

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a virtualenv with the dependencies, then the project -----------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, exactly as locked (hashes required, nothing resolved): this layer is
# rebuilt only when the lock changes, not on every source edit. requirements/runtime.lock is
# the runtime part of the lock `make test` installs, so the image runs the versions CI tested.
COPY requirements/runtime.lock ./requirements/runtime.lock
RUN pip install --require-hashes --no-deps -r requirements/runtime.lock
# Then the project itself, with the locked setuptools and without touching the dependencies
# again; bytecode is compiled now because at run time the root filesystem is read-only.
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY cli ./cli
COPY quant ./quant
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && python -m compileall -q /opt/venv

# ---- runtime: the virtualenv only, as an unprivileged user -----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# A fixed uid/gid, the one the Helm chart's securityContext names (runAsUser 10001).
RUN groupadd --system --gid 10001 quantops \
    && useradd --system --uid 10001 --gid quantops --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin quantops \
    && mkdir -p /data \
    && chown quantops:quantops /data
COPY --from=build /opt/venv /opt/venv
# Container defaults of shared/settings.py (the embedded defaults bind loopback, which is
# unreachable from outside a container).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QUANTOPS_DATA_DIR=/data \
    QUANTOPS_GATEWAY_HOST=0.0.0.0 \
    QUANTOPS_GATEWAY_PORT=8080 \
    QUANTOPS_METRICS_HOST=0.0.0.0 \
    QUANTOPS_METRICS_PORT=9100
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# 8080: the gateway's HTTP API; 9100: Prometheus metrics of whichever service runs.
EXPOSE 8080 9100
ENTRYPOINT ["quantops"]
CMD ["serve", "gateway"]
