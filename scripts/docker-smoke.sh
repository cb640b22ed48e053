#!/usr/bin/env bash
# Builds the container image and tests it as a user runs it (tests/container: env-only config,
# HEALTHCHECK, non-root, spool volume, HTTP and gRPC traces read back from a real MLflow, SIGHUP,
# docker stop). Needs a Docker daemon; not part of scripts/test.sh, whose machines have none.
#   scripts/docker-smoke.sh [IMAGE]          (default otlp-mlflow-proxy:dev)
# Where Docker Hub is unreachable, debian:12 is made locally with debootstrap from Debian's own
# mirror and imported (a minbase rootfs: what the Dockerfile's two stages need, apt included).
source "$(dirname "$0")/lib.sh"

IMAGE="${1:-otlp-mlflow-proxy:dev}"
docker info >/dev/null 2>&1 || { echo "no Docker daemon reachable (docker info failed)" >&2; exit 1; }
ensure_venv

if ! docker image inspect debian:12 >/dev/null 2>&1 && ! docker pull debian:12 && ! docker pull debian:12-slim; then
  log "Docker Hub unreachable: making debian:12 with debootstrap"
  install_packages debootstrap
  rootfs="$CACHE_DIR/debian12-rootfs"
  [[ -x "$rootfs/usr/bin/apt-get" ]] || as_root debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian
  as_root tar -C "$rootfs" -c . | docker import - debian:12
fi
docker image inspect debian:12-slim >/dev/null 2>&1 || docker pull debian:12-slim || docker tag debian:12 debian:12-slim

log "building $IMAGE"
# Host networking for the build's apt-get: works with or without a bridge network on the daemon.
docker build --network host -t "$IMAGE" "$REPO_ROOT"
docker image ls "$IMAGE"

log "testing $IMAGE (tests/container)"
IMAGE="$IMAGE" "$VENV_DIR/bin/python" -m pytest -p no:cacheprovider -v "$REPO_ROOT/tests/container"
