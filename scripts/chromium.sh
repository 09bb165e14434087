#!/usr/bin/env bash
# Chromium for chirpbase's browser tests (the operator console), from Debian's packages.
#
#   scripts/chromium.sh          install when missing, then print the browser's path
#
# Playwright drives it (PyPI `playwright`, executable_path=/usr/bin/chromium): `playwright
# install` downloads its own browser builds, which these machines cannot fetch. Fonts come
# along so screenshots show text (fonts-dejavu-core, fonts-noto-color-emoji for emoji).
set -euo pipefail

BIN="${CHIRPBASE_CHROMIUM:-/usr/bin/chromium}"
log() { printf '[chromium] %s\n' "$*" >&2; }

missing=()
[ -x "$BIN" ] || missing+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != "0" ]; then log "need root to apt-get install ${missing[*]} (or set CHIRPBASE_CHROMIUM)"; exit 1; fi
  log "installing ${missing[*]} with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "$BIN"
