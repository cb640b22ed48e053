#!/usr/bin/env bash
# Tests the ways the proxy ships, from a release build (build/ by default, which scripts/test.sh
# has built and tested):
#  1. the deploy examples: deploy/kubernetes/*.yaml against the Kubernetes API schemas
#     (kubernetes-validate, strict), deploy/compose.yaml with `docker-compose config`;
#  2. the Debian package, `cpack -G DEB`;
#  3. with a Docker daemon (started here when none runs, stopped at the end): the debian:12 and
#     debian:12-slim bases, the image built from the Dockerfile and its size, then tests/container:
#     the image as users run it, the .deb installed and removed in a fresh debian:12, and the
#     compose file's proxy service brought up. Where no daemon can be had, this says so and
#     skips step 3.
# Each step logs how long it took. PROXY_TEST_PACKAGES=0 skips it all (a quicker local run).
#   scripts/test-packages.sh [BUILD_DIR]
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-docker.sh"

BUILD_DIR="$(realpath "${1:-$REPO_ROOT/build}")"
IMAGE="${IMAGE:-otlp-mlflow-proxy:test}"
if [ "${PROXY_TEST_PACKAGES:-1}" = "0" ]; then
  log "skipping the package, image and deploy tests (PROXY_TEST_PACKAGES=0)"
  exit 0
fi

# Runs a step and logs its duration: CI's time is budgeted per stage.
timed() {
  local what="$1" started=$SECONDS; shift
  "$@"
  log "$what took $((SECONDS - started)) s"
}

validate_deploy_examples() {
  log "deploy/kubernetes: strict schema check against Kubernetes 1.29 (native sidecars) and 1.37"
  for version in 1.29.0 1.37.0; do
    "$DEPLOY_VENV_DIR/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" \
      "$REPO_ROOT"/deploy/kubernetes/*.yaml
  done
  log "deploy/compose.yaml: docker-compose config"
  docker-compose --project-directory "$REPO_ROOT/deploy" -f "$REPO_ROOT/deploy/compose.yaml" config -q
}

build_deb() {
  log "Debian package: cpack -G DEB in $BUILD_DIR"
  rm -rf "$BUILD_DIR/package"
  (cd "$BUILD_DIR" && cpack -G DEB -B "$BUILD_DIR/package" >/dev/null)
  DEB="$(ls "$BUILD_DIR"/package/otlp-mlflow-proxy_*_amd64.deb)"
  dpkg-deb --field "$DEB" Package Version Depends Installed-Size
  dpkg-deb --contents "$DEB" | awk '$6 !~ /\/$/ {print "  " $1, $3, $6}'
}

build_image() {
  log "building $IMAGE from the Dockerfile (log in $DOCKER_WORK/image-build.log)"
  # The classic builder: BuildKit would fetch its Dockerfile frontend from a registry.
  if ! DOCKER_BUILDKIT=0 docker build --network host -t "$IMAGE" "$REPO_ROOT" \
      >"$DOCKER_WORK/image-build.log" 2>&1; then
    tail -n 60 "$DOCKER_WORK/image-build.log" >&2
    return 1
  fi
}

# The image's size, how much of it sits above debian:12-slim, and what takes that space.
report_image_size() {
  local image base
  image="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
  base="$(docker image inspect -f '{{.Size}}' debian:12-slim)"
  log "$IMAGE: $((image / 1000000)) MB, $(((image - base) / 1000000)) MB of it above debian:12-slim"
  docker history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" | cut -c1-110 | sed 's/^/  /' \
    | head -n "$(($(docker history -q "$IMAGE" | wc -l) - $(docker history -q debian:12-slim | wc -l)))"
  local query="dpkg-query -W -f '\${Installed-Size} \${Package}\n' | sort"
  docker run --rm --network host --entrypoint sh debian:12-slim -c "$query" >"$DOCKER_WORK/base.packages"
  docker run --rm --network host --entrypoint sh "$IMAGE" -c "$query" >"$DOCKER_WORK/image.packages"
  log "packages the image adds (installed KiB), and the binary:"
  comm -13 "$DOCKER_WORK/base.packages" "$DOCKER_WORK/image.packages" | sort -rn \
    | awk '{total += $1; printf "  %6d %s\n", $1, $2} END {printf "  %6d in all\n", total}'
  docker run --rm --network host --entrypoint ls "$IMAGE" -s --block-size=K \
    /usr/local/bin/otlp-mlflow-proxy | sed 's/^/  /'
}

test_container() {
  log "tests/container: the image, the .deb in a fresh debian:12, the compose service"
  IMAGE="$IMAGE" BASE_IMAGE=debian:12 SLIM_IMAGE=debian:12-slim DEB="$DEB" \
    APT_SOURCES="$(debian_apt_sources_file)" \
    "$VENV_DIR/bin/python" -m pytest -p no:cacheprovider -v "$REPO_ROOT/tests/container"
}

install_packages docker-compose python3 python3-venv
ensure_venv
ensure_requirements_venv "$DEPLOY_VENV_DIR" "$REPO_ROOT/tests/requirements-deploy.txt"
timed "validating the deploy examples" validate_deploy_examples
timed "building the .deb" build_deb

if ! docker_daemon_start; then
  log "SKIPPED: the image and the .deb install tests need a Docker daemon; none could be had (see above)"
  exit 0
fi
trap docker_daemon_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
timed "making the Debian 12 base images" ensure_debian_base_images
timed "building the image" build_image
report_image_size
timed "tests/container" test_container
