#!/bin/sh
# The queue tests and `glasswing run --queue` need Debian's redis-server (never a downloaded build):
# install it when missing, as ensure-chromium.sh does for the browser tests.
set -e
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
SUDO=""
[ "$(id -u)" = "0" ] || SUDO="sudo"
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
command -v redis-server >/dev/null
