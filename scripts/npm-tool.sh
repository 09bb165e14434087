# Sourced by scripts/deno.sh and scripts/supabase.sh: install one pinned npm package into a
# folder of its own under .local/, once, and check that the binary it ships is there.
#
#   npm_tool_install LOG_PREFIX PACKAGE@VERSION PREFIX BINARY
#
# Needs npm (installed with apt when missing and running as root). A lock per folder keeps
# parallel callers (pytest processes, make -j) from racing. --ignore-scripts: the per-platform
# optional dependencies carry the binaries, nothing needs building or copying. A second call
# does not touch the network.

npm_tool_install() {
  local tag="$1" spec="$2" prefix="$3" bin="$4"
  if [ -x "$bin" ]; then return; fi
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
      printf '[%s] npm not found: installing nodejs and npm with apt\n' "$tag" >&2
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
      printf '[%s] npm is required to install %s (apt-get install -y npm)\n' "$tag" "$spec" >&2
      exit 1
    fi
  fi
  printf '[%s] installing %s from the npm registry into %s\n' "$tag" "$spec" "$prefix" >&2
  mkdir -p "$prefix"
  (
    flock 9
    if [ ! -x "$bin" ]; then
      printf '{"name":"chirpbase-%s","private":true}\n' "$tag" >"$prefix/package.json"
      npm install --prefix "$prefix" --no-save --no-audit --no-fund --ignore-scripts \
        --loglevel=error "$spec" >&2
    fi
  ) 9>"$(dirname "$prefix")/.install.lock"
  if [ ! -x "$bin" ]; then
    printf '[%s] npm did not install %s\n' "$tag" "$bin" >&2
    exit 1
  fi
  printf '[%s] installed %s\n' "$tag" "$("$bin" --version | head -n1)" >&2
}
