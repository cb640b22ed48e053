# A Docker daemon for the container and package tests, and Debian 12 base images where no registry
# can be reached. Source it after lib.sh; do not run it.
#
# Everything runs with host networking (`--network host`): the daemon is started without a bridge,
# so builds and containers reach the apt mirror and the tests' servers on 127.0.0.1 as the host
# does, and no test traffic leaves loopback.

DOCKERD_PID=""  # set when docker_daemon_start started one; docker_daemon_stop ends only that one
DOCKER_WORK="${DOCKER_WORK:-$REPO_ROOT/build-docker}"

# A daemon that answers, starting Debian's dockerd in the background when none does (installing
# docker.io first). Returns 1, after saying why, where none can be had: not root, or dockerd
# does not come up (no cgroups or overlay support in a sandbox, say).
docker_daemon_start() {
  if docker info >/dev/null 2>&1; then
    log "using the running Docker daemon"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
    log "no Docker daemon, and starting one needs root (or sudo without a password)"
    return 1
  fi
  command -v dockerd >/dev/null || install_packages docker.io || return 1
  mkdir -p "$DOCKER_WORK"
  log "starting dockerd (no bridge, no iptables rules; log in $DOCKER_WORK/dockerd.log)"
  # Not through as_root: a backgrounded function would be a subshell, and $! its pid, not dockerd's.
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" dockerd --bridge=none --iptables=false --ip6tables=false >"$DOCKER_WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  local waited=0
  until docker info >/dev/null 2>&1; do
    if ! ps -p "$DOCKERD_PID" >/dev/null || [ "$waited" -ge 60 ]; then
      log "dockerd did not come up; the end of its log:"
      tail -n 15 "$DOCKER_WORK/dockerd.log" >&2
      docker_daemon_stop
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

# Stops the daemon that docker_daemon_start started (its containers stop with it; images stay).
docker_daemon_stop() {
  [ -n "$DOCKERD_PID" ] || return 0
  log "stopping dockerd (pid $DOCKERD_PID)"
  as_root kill -TERM "$DOCKERD_PID" 2>/dev/null || true
  local waited=0
  while ps -p "$DOCKERD_PID" >/dev/null && [ "$waited" -lt 30 ]; do
    sleep 1
    waited=$((waited + 1))
  done
  if ps -p "$DOCKERD_PID" >/dev/null; then as_root kill -KILL "$DOCKERD_PID" || true; fi
  wait "$DOCKERD_PID" 2>/dev/null || true
  DOCKERD_PID=""
}

# Debian 12 as deb822 sources from this machine's own apt sources.
debian_apt_sources_file() {
  mkdir -p "$DOCKER_WORK"
  "$REPO_ROOT/scripts/debian_sources.py" --release bookworm >"$DOCKER_WORK/debian.sources"
  echo "$DOCKER_WORK/debian.sources"
}

# debian:12 and debian:12-slim: pulled when a registry answers, else made with debootstrap from
# the host's mirror and imported. Kept by the daemon, so this is quick the second time.
ensure_debian_base_images() {
  if docker image inspect debian:12 debian:12-slim >/dev/null 2>&1; then return 0; fi
  if docker pull -q debian:12 >/dev/null 2>&1 && docker pull -q debian:12-slim >/dev/null 2>&1; then
    return 0
  fi
  log "no registry image of Debian 12 to be had: making debian:12 and debian:12-slim with debootstrap"
  install_packages debootstrap
  local rootfs="$DOCKER_WORK/rootfs" mirror sources
  mirror="$("$REPO_ROOT/scripts/debian_sources.py" --release bookworm --mirror)"
  sources="$(debian_apt_sources_file)"
  as_root rm -rf "$rootfs"
  as_root debootstrap --variant=minbase --foreign bookworm "$rootfs" "$mirror" >"$DOCKER_WORK/debootstrap.log"
  # dpkg without an fsync per file, as in the registry's images: an image being made has no
  # crash to survive, and this halves the second stage (and speeds every apt-get in a build).
  echo force-unsafe-io | as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/unsafe-io" >/dev/null
  as_root chroot "$rootfs" /debootstrap/debootstrap --second-stage >>"$DOCKER_WORK/debootstrap.log"
  # apt as in the registry's images: deb822 sources (with security updates), no downloaded
  # packages or lists.
  as_root rm -f "$rootfs/etc/apt/sources.list"
  as_root install -m 0644 "$sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
  as_root sh -c "rm -rf '$rootfs'/var/lib/apt/lists/* '$rootfs'/var/cache/apt/*.bin '$rootfs'/var/cache/apt/archives/*.deb"
  as_root tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - debian:12 >/dev/null
  slim_rootfs "$rootfs"
  as_root tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - debian:12-slim >/dev/null
  as_root rm -rf "$rootfs"
  docker image ls debian
}

# What makes the registry's -slim image slim: no documentation, manual pages or translations,
# now or from later installs (dpkg's path excludes); the copyright files stay.
slim_rootfs() {
  local rootfs="$1"
  as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/slim" >/dev/null <<'EOF'
# Documentation, manual pages and translations are left out of this image.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  as_root find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
  as_root find "$rootfs/usr/share/doc" -type d -empty -delete
  as_root find "$rootfs/usr/share/locale" -mindepth 1 ! -name locale.alias -delete
  as_root rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/groff/* \
    "$rootfs"/usr/share/lintian/*
}
