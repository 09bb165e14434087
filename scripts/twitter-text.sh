#!/usr/bin/env bash
# X's reference tweet counter, npm `twitter-text` (pinned), for the tests that check chirpbase's
# own counters against it.
#
#   scripts/twitter-text.sh            install if needed and print the package's directory
#   scripts/twitter-text.sh parse      install if needed, then read a JSON array of strings on
#                                      stdin and print, for each, parseTweet's result and the
#                                      URLs extractUrlsWithIndices finds (a JSON array)
#
# Installed with npm into .local/twitter-text/<version> (scripts/npm-tool.sh, as for Deno);
# idempotent (a second call does not touch the network) and safe to call in parallel.
# Environment: CHIRPBASE_TWITTER_TEXT_VERSION (default below).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${CHIRPBASE_TWITTER_TEXT_VERSION:-3.1.0}"
# twitter-text 3.1.0 asks for twemoji-parser ^11.0.2 (its emoji data); pinned so it cannot drift.
TWEMOJI_PARSER_VERSION="11.0.2"
HOME_DIR="$ROOT/.local/twitter-text"
PREFIX="$HOME_DIR/$VERSION"
PACKAGE="$PREFIX/node_modules/twitter-text"

log() { printf '[twitter-text] %s\n' "$*" >&2; }

# shellcheck source=scripts/npm-tool.sh
. "$ROOT/scripts/npm-tool.sh"

install() {
  npm_tool_install twitter-text "$PREFIX" "$PACKAGE/package.json" \
    "twitter-text@$VERSION" "twemoji-parser@$TWEMOJI_PARSER_VERSION"
}

mkdir -p "$HOME_DIR"
install
if [ "$#" -eq 0 ]; then
  echo "$PACKAGE"
  exit 0
fi
case "$1" in
  parse) exec env NODE_PATH="$PREFIX/node_modules" node "$ROOT/scripts/twitter_text_parse.cjs" ;;
  *) log "unknown command $1 (expected: parse)"; exit 2 ;;
esac
