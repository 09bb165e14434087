# Sourced by scripts/deno.sh, scripts/supabase.sh and scripts/twitter-text.sh: install pinned npm
# packages into a folder of their own under .local/, once.
#
#   npm_tool_install LOG_PREFIX PREFIX MARKER PACKAGE@VERSION [PACKAGE@VERSION ...]
#
# MARKER is the file the install must produce (a binary, or a package.json); when it is there
# nothing is done and the network is not touched. An executable MARKER is asked for its version.
# Needs npm (installed with apt when missing and running as root). A lock per folder keeps
# parallel callers (pytest processes, make -j) from racing. --ignore-scripts: the per-platform
# optional dependencies carry the binaries, nothing needs building or copying. Fetches time out
# and are retried, so a stalled registry connection fails the install instead of hanging it.

npm_tool_install() {
  local tag="$1" prefix="$2" marker="$3"
  shift 3
  if [ -e "$marker" ]; then return; fi
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
      printf '[%s] npm not found: installing nodejs and npm with apt\n' "$tag" >&2
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
      printf '[%s] npm is required to install %s (apt-get install -y npm)\n' "$tag" "$*" >&2
      exit 1
    fi
  fi
  mkdir -p "$prefix"
  (
    flock 9
    if [ ! -e "$marker" ]; then
      printf '[%s] installing %s from the npm registry into %s\n' "$tag" "$*" "$prefix" >&2
      printf '{"name":"chirpbase-%s","private":true}\n' "$tag" >"$prefix/package.json"
      npm install --prefix "$prefix" --no-save --no-audit --no-fund --ignore-scripts \
        --fetch-timeout=120000 --fetch-retries=4 --loglevel=error "$@" >&2
    fi
  ) 9>"$(dirname "$prefix")/.install.lock"
  if [ ! -e "$marker" ]; then
    printf '[%s] npm did not install %s (expected %s)\n' "$tag" "$*" "$marker" >&2
    exit 1
  fi
  if [ -x "$marker" ] && [ ! -d "$marker" ]; then
    printf '[%s] installed %s\n' "$tag" "$("$marker" --version | head -n1)" >&2
  fi
}
