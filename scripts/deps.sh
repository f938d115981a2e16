#!/bin/sh
# Install every Debian 12 package mimo needs to build, test, benchmark and fuzz.
# Idempotent and quiet when everything is present; run as root (or with sudo available).
set -eu

PKGS="
build-essential pkg-config meson ninja-build clang clang-format libclang-rt-14-dev
libjansson-dev libcurl4-openssl-dev libmicrohttpd-dev liburing-dev libssl-dev
libfuse3-dev fuse3 fio libnats-dev nats-server
qemu-system-common
libcmocka-dev python3 python3-pytest python3-flask tshark
"

missing=""
for p in $PKGS; do
	# dpkg-query prints "install ok installed" only for a fully installed package.
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install:$missing" >&2; exit 1; }
	SUDO="sudo"
fi
echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have empty package lists; update once, quietly.
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
