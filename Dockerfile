# syntax=docker/dockerfile:1
# itam-tgstats: `tgstats collect` every 15 minutes under supercronic.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- wheels for the package and its dependencies -------------------------------------------
FROM ${PYTHON_IMAGE} AS build
# A C compiler for tgcrypto on platforms without a prebuilt wheel.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY itam_tgstats ./itam_tgstats
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- supercronic, pinned and checksummed per architecture ----------------------------------
FROM ${PYTHON_IMAGE} AS supercronic
ARG TARGETARCH
ARG SUPERCRONIC_VERSION=v0.2.34
ARG SUPERCRONIC_SHA1_AMD64=e8631edc1775000d119b70fd40339a7238eece14
ARG SUPERCRONIC_SHA1_ARM64=4ab6343b52bf9da592e8b4bb7ae6eb5a8e21b71e
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN case "${TARGETARCH}" in \
      amd64) sha1="${SUPERCRONIC_SHA1_AMD64}" ;; \
      arm64) sha1="${SUPERCRONIC_SHA1_ARM64}" ;; \
      *) echo "no pinned supercronic checksum for architecture '${TARGETARCH}'" >&2; exit 1 ;; \
    esac \
 && curl -fsSL -o /usr/local/bin/supercronic \
      "https://github.com/aptible/supercronic/releases/download/${SUPERCRONIC_VERSION}/supercronic-linux-${TARGETARCH}" \
 && echo "${sha1}  /usr/local/bin/supercronic" | sha1sum -c - \
 && chmod 0755 /usr/local/bin/supercronic

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels
COPY --from=supercronic /usr/local/bin/supercronic /usr/local/bin/supercronic
COPY crontab /etc/tgstats/crontab
COPY docker/entrypoint.sh /usr/local/bin/tgstats-entrypoint
# A broken schedule fails the build, not the deployment.
RUN supercronic -test /etc/tgstats/crontab \
 && groupadd --gid 10001 tgstats \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin tgstats \
 && install -d -o 10001 -g 10001 /app
WORKDIR /app
USER 10001:10001
# Healthy while the last successful pass is younger than 2 x TG_UPDATE_INTERVAL.
HEALTHCHECK --interval=1m --timeout=20s --start-period=3m --retries=3 \
  CMD ["tgstats", "show", "--check"]
ENTRYPOINT ["/usr/local/bin/tgstats-entrypoint"]
