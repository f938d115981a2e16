#!/bin/sh
# Install every Debian 12 package mimo needs to build, test, benchmark and fuzz.
# Idempotent and quiet when everything is present; run as root (or with sudo available).
set -eu

# The tests with kernel clients in a QEMU guest (docs/guest-tests.md): qemu-system-x86, kmod
# (depmod) and zstd (unpacks the 6.12 kernel) to build the image, iproute2 for a network
# namespace per test. python3-venv and python3-setuptools: the offline install of python/.
# tmux: the test that drives mimo_top (Python's curses) as a terminal would.
# prometheus (and its promtool): the metrics tests scrape mimo with the real thing.
PKGS="
build-essential pkg-config meson ninja-build clang clang-format libclang-rt-14-dev
libjansson-dev libcurl4-openssl-dev libmicrohttpd-dev liburing-dev libssl-dev prometheus
libfuse3-dev fuse3 fio libnats-dev nats-server
qemu-system-common qemu-system-x86 kmod iproute2 zstd
libcmocka-dev python3 python3-pytest python3-flask python3-setuptools python3-venv tshark
tmux
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
# Another apt (unattended-upgrades on a fresh machine, a second terminal) may hold the dpkg
# lock: wait for it, up to 10 minutes, instead of failing at once.
LOCK="-o DPkg::Lock::Timeout=600"
# A fresh machine may have empty package lists; update once, quietly. apt-get update does not
# wait for the lists lock (DPkg::Lock::Timeout covers only dpkg's): retry while it is held.
tries=0
# shellcheck disable=SC2086
until out=$($SUDO apt-get $LOCK update -qq 2>&1); do
	case "$out" in
	*"Could not get lock"* | *"Unable to lock"*) ;;
	*)
		echo "$out" >&2
		exit 1
		;;
	esac
	tries=$((tries + 1))
	[ "$tries" -eq 1 ] && echo "deps.sh: another apt holds its lock; waiting (up to 10 minutes)" >&2
	[ "$tries" -ge 300 ] && { echo "$out" >&2; exit 1; }
	sleep 2
done
# shellcheck disable=SC2086
$SUDO apt-get $LOCK install -y -qq --no-install-recommends $missing >/dev/null
