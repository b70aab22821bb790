# itam-tgstats: `tgstats collect` every TG_UPDATE_INTERVAL under supercronic, a pass at start.
# Builds with the classic builder and with BuildKit; pulls nothing but the base image and
# supercronic (no `# syntax=` frontend).
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- the package and its dependencies, installed into /install -----------------------------
FROM ${PYTHON_IMAGE} AS build
# A C compiler for tgcrypto on platforms without a prebuilt wheel.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY itam_tgstats ./itam_tgstats
# Installed under a prefix that the runtime stage copies onto /usr/local in one layer.
RUN pip install --no-cache-dir --prefix=/install .

# --- supercronic, pinned and checksummed per architecture ----------------------------------
# v0.2.48: no PID-1 re-exec bug (fixed in v0.2.36). Its sha1s, from two independent sources:
#   amd64 016b7c9a…: the release notes (https://github.com/aptible/supercronic/releases/tag/v0.2.48)
#     and public Dockerfiles pinning v0.2.48 (found with the same value in five repositories);
#   arm64 2ab9b3bd…: four independent public Dockerfiles pinning v0.2.48 (one refreshed by a
#     workflow that hashes the release asset), all agreeing.
# SUPERCRONIC_URL empty: the GitHub release of SUPERCRONIC_VERSION for the architecture.
FROM ${PYTHON_IMAGE} AS supercronic
ARG TARGETARCH
ARG SUPERCRONIC_VERSION=v0.2.48
ARG SUPERCRONIC_URL=
ARG SUPERCRONIC_SHA1_AMD64=016b7c9aebfc8d9fd9526e8ba33b191fc524485f
ARG SUPERCRONIC_SHA1_ARM64=2ab9b3bdcf290f60b59700aad876b6e68f3a6b06
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# TARGETARCH is empty under the classic builder: then the build container's architecture.
RUN arch="${TARGETARCH:-$(dpkg --print-architecture)}" \
 && case "${arch}" in \
      amd64) sha1="${SUPERCRONIC_SHA1_AMD64}" ;; \
      arm64) sha1="${SUPERCRONIC_SHA1_ARM64}" ;; \
      *) echo "no pinned supercronic checksum for architecture '${arch}'" >&2; exit 1 ;; \
    esac \
 && url="${SUPERCRONIC_URL:-https://github.com/aptible/supercronic/releases/download/${SUPERCRONIC_VERSION}/supercronic-linux-${arch}}" \
 && python -c 'import sys, urllib.request; open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=120).read())' \
      "${url}" /usr/local/bin/supercronic \
 && echo "${sha1}  /usr/local/bin/supercronic" | sha1sum -c - \
 && chmod 0755 /usr/local/bin/supercronic

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /install /usr/local
COPY --from=supercronic /usr/local/bin/supercronic /usr/local/bin/supercronic
COPY docker/entrypoint.sh /usr/local/bin/tgstats-entrypoint
COPY docker/healthcheck.sh /usr/local/bin/tgstats-healthcheck
# The schedule at the default TG_UPDATE_INTERVAL: the repo's top-level crontab.
COPY crontab /usr/local/share/tgstats/crontab
# A broken schedule fails the build, not the deployment: supercronic reads the shipped
# crontab (the one generated for 900 s, to the byte) and those generated for the minute,
# hourly and daily forms. /run/tgstats: the init's private files (its crontab, the health
# check's markers); /etc/tgstats: where a deployer mounts a crontab of their own.
RUN grep -qxF "$(TG_UPDATE_INTERVAL=900 python -m itam_tgstats.commands.container --print-crontab)" \
      /usr/local/share/tgstats/crontab \
 && /usr/local/bin/supercronic -test /usr/local/share/tgstats/crontab \
 && for interval in 60 3600 21600 86400; do \
      TG_UPDATE_INTERVAL="${interval}" python -m itam_tgstats.commands.container --print-crontab \
        > /tmp/tgstats.crontab \
      && /usr/local/bin/supercronic -test /tmp/tgstats.crontab || exit 1; \
    done \
 && rm /tmp/tgstats.crontab \
 && groupadd --gid 10001 tgstats \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin tgstats \
 && install -d -o 10001 -g 10001 /app \
 && install -d -o 10001 -g 10001 -m 0700 /run/tgstats \
 && install -d -m 0755 /etc/tgstats
WORKDIR /app
USER 10001:10001
# Healthy while the last success is younger than 2 × TG_UPDATE_INTERVAL. Docker 20.10 has
# no --start-interval: the check runs every 10 s from the start, and its first run waits
# for the init's start sequence (the pass at start: up to 30 s for Redis + TG_TIMEOUT) to
# end, so the first result is that pass's, within seconds. No start period: that result
# counts at once (retries 1), healthy or not. The timeout covers a TG_TIMEOUT up to ~9 min.
HEALTHCHECK --interval=10s --timeout=10m --retries=1 \
  CMD ["tgstats-healthcheck"]
ENTRYPOINT ["/usr/local/bin/tgstats-entrypoint"]
