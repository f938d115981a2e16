# Helpers for guest test scripts, sourced before /test/script.sh runs (busybox sh, set -e).
# Environment: GUEST_<name> for every mimo.<name>=value on the kernel command line; the host
# side (test/guest/vm.py) always sets GUEST_tgt (the target's address as the guest reaches
# it), GUEST_ip (the guest's address/prefix) and GUEST_hostnqn/GUEST_hostid (also written to
# /etc/nvme/hostnqn and /etc/nvme/hostid, which nvme-cli uses).

# mark NAME: tell the host NAME happened (Run.wait_for("NAME") returns then).
mark() {
	echo "@@mimo:mark=$1@@"
}

# wait_host: read one line the host sent (Run.send(line)) and print it.
wait_host() {
	IFS= read -r _line
	echo "$_line"
}

# wait_for SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds; fail after SECONDS.
wait_for() {
	_n=$(($1 * 10))
	shift
	until "$@" >/dev/null 2>&1; do
		_n=$((_n - 1))
		if [ "$_n" -le 0 ]; then
			echo "wait_for: timed out: $*" >&2
			return 1
		fi
		sleep 0.1
	done
}

# nvme_ns NQN [NSID]: the block device (/dev/nvmeXnY) of namespace NSID (1) of the connected
# subsystem NQN; waits (up to 30 s) until the kernel has scanned it.
nvme_ns() {
	_nqn=$1
	_nsid=${2:-1}
	_n=300
	while :; do
		for _s in /sys/class/nvme-subsystem/*; do
			[ -r "$_s/subsysnqn" ] && [ "$(cat "$_s/subsysnqn")" = "$_nqn" ] || continue
			for _b in "$_s"/nvme*n*; do
				[ -r "$_b/nsid" ] && [ "$(cat "$_b/nsid")" = "$_nsid" ] || continue
				_d=/dev/${_b##*/}
				if [ -b "$_d" ]; then
					echo "$_d"
					return 0
				fi
			done
		done
		_n=$((_n - 1))
		if [ "$_n" -le 0 ]; then
			echo "nvme_ns: no namespace $_nsid of $_nqn" >&2
			return 1
		fi
		sleep 0.1
	done
}
