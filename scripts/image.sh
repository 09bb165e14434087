#!/usr/bin/env bash
# The chirpbase worker image, built from the Dockerfile with buildah: no Docker engine needed.
#
#   scripts/image.sh build          build the Dockerfile into chirpbase-worker:latest
#   scripts/image.sh base           make the base image (debian:bookworm-slim) locally if missing
#   scripts/image.sh size           print the image's size (uncompressed, as `docker images` shows it)
#   scripts/image.sh buildah ARGS   run buildah on the project's image store (inspect, from, mount...)
#
# Images live in a store of their own under .local/containers (vfs driver: no overlay or fuse
# needed), so checkouts side by side never share or overwrite each other's images. The build runs
# with `--isolation chroot` (no OCI runtime, no user namespaces), on the host network.
#
# No registry is needed either: when the store lacks the Dockerfile's base image, it is made with
# `debootstrap --variant=minbase bookworm` and slimmed the way Debian's official -slim images are
# (documentation, manuals and translations excluded by dpkg), then committed under the name the
# Dockerfile's FROM uses. On an ordinary Docker host the same Dockerfile pulls the official image.
#
# Behind a TLS-intercepting proxy the build trusts the machine's CA bundle: when
# /etc/ssl/certs/ca-certificates.crt exists it is mounted read-only (the build secret `host-ca`)
# into the steps that download Python packages, and SSL_CERT_FILE, PIP_CERT and UV_SYSTEM_CERTS=1
# are passed as build arguments of the build stage: none of it reaches the image. Without the
# bundle nothing is set, and the build is what `docker build` does.
#
# Environment: CHIRPBASE_IMAGE (default chirpbase-worker:latest), CHIRPBASE_IMAGE_STORE (default
# .local/containers), DEBIAN_MIRROR (default http://deb.debian.org/debian), HOST_CA_BUNDLE.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${CHIRPBASE_IMAGE:-chirpbase-worker:latest}"
STORE="${CHIRPBASE_IMAGE_STORE:-$ROOT/.local/containers}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# Where RUN steps see a build secret (the Dockerfile's `--mount=type=secret,id=host-ca`).
CA_IN_BUILD="/run/secrets/host-ca"

log() { printf '[image] %s\n' "$*" >&2; }

bh() { buildah --root "$STORE/storage" --runroot "$STORE/run" --storage-driver vfs "$@"; }

install() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ "${#missing[@]}" -eq 0 ]; then return; fi
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
    log "need ${missing[*]} (as root: apt-get install -y ${missing[*]})"
    exit 1
  fi
  log "installing ${missing[*]} with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The FROM of the Dockerfile's final stage (ARG defaults resolved): the image to provide.
base_name() {
  local default
  default="$(sed -n 's/^ARG BASE_IMAGE=\(.*\)$/\1/p' "$ROOT/Dockerfile" | head -n1)"
  echo "${CHIRPBASE_BASE_IMAGE:-$default}"
}

# What debuerreotype does for Debian's -slim variants: dpkg stops installing documentation,
# manuals and translations, and what minbase already installed of them goes.
slim() {
  local dir="$1"
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
CFG
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"
  find "$dir/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/{groff,info,linda,lintian,man}/*
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
  rm -rf "$dir"/var/log/* "$dir"/tmp/* "$dir"/root/.bash_history
  # Like the official image, the mirror is the plain CDN name (a build-time mirror stays out).
  printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    >"$dir/etc/apt/sources.list"
  : >"$dir/etc/hostname"
}

base() {
  install
  local name arch dir ctr mnt
  name="$(base_name)"
  if bh inspect --type image "$name" >/dev/null 2>&1; then return; fi
  case "$name" in
    debian:bookworm-slim | docker.io/library/debian:bookworm-slim) ;;
    *) log "no registry here, and only debian:bookworm-slim can be made locally (FROM is $name)"; exit 1 ;;
  esac
  arch="$(dpkg --print-architecture)"
  dir="$STORE/rootfs-bookworm"
  rm -rf "$dir"
  mkdir -p "$dir"
  log "making $name locally: debootstrap --variant=minbase bookworm from $MIRROR"
  if ! debootstrap --variant=minbase --arch="$arch" bookworm "$dir" "$MIRROR" >"$STORE/debootstrap.log" 2>&1; then
    tail -n 20 "$STORE/debootstrap.log" >&2
    log "debootstrap failed (full log: $STORE/debootstrap.log)"
    exit 1
  fi
  slim "$dir"
  ctr="$(bh from --name chirpbase-base-$$ scratch)"
  mnt="$(bh mount "$ctr")"
  cp -a "$dir/." "$mnt/"
  bh umount "$ctr" >/dev/null
  bh config --os linux --arch "$arch" --cmd bash \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  bh commit --quiet --format docker --rm "$ctr" "docker.io/library/$name" >/dev/null
  rm -rf "$dir"
  log "base image $name: $(size_of "$name")"
}

size_of() {
  # Uncompressed size of all layers in SI units, the figure `docker images` shows.
  bh images --noheading --format '{{.Size}}' "$1"
}

build() {
  base
  local args=(--isolation chroot --format docker --pull=never --layers=false
    -f "$ROOT/Dockerfile" -t "$IMAGE")
  if [ -f "$CA_BUNDLE" ]; then
    log "trusting the host CA bundle $CA_BUNDLE for this build (mounted read-only)"
    args+=(--secret "id=host-ca,src=$CA_BUNDLE"
      --build-arg "SSL_CERT_FILE=$CA_IN_BUILD" --build-arg "PIP_CERT=$CA_IN_BUILD"
      --build-arg "UV_SYSTEM_CERTS=1")
  fi
  local t0=$SECONDS
  log "building $IMAGE"
  bh bud "${args[@]}" "$ROOT"
  log "built $IMAGE in $((SECONDS - t0)) s: $(size_of "$IMAGE")"
  # Builds leave the previous image untagged behind; the vfs store keeps full copies of each.
  bh rmi --prune >/dev/null 2>&1 || true
}

mkdir -p "$STORE"
case "${1:-}" in
  build) build ;;
  base) base ;;
  install) install ;;
  size) size_of "${2:-$IMAGE}" ;;
  buildah) shift; bh "$@" ;;
  *) echo "usage: $0 build|base|size [IMAGE]|buildah ARGS..." >&2; exit 2 ;;
esac
