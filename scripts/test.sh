#!/bin/bash
# `make test`: run every test stage even when an earlier one fails, so a failing integration
# test never hides what ASan or TSan would have said, then say which stages failed. Exits
# non-zero if any did. The stages are the Makefile's own targets, run one after another.
set -u
cd "$(dirname "$0")/.."

stages=("$@")
failed=()
for s in "${stages[@]}"; do
	start=$(date +%s)
	echo "=== make $s"
	if make --no-print-directory "$s"; then
		echo "=== make $s: passed in $(($(date +%s) - start)) s"
	else
		echo "=== make $s: FAILED (exit $?) after $(($(date +%s) - start)) s"
		failed+=("$s")
	fi
done

echo
for s in "${stages[@]}"; do
	case " ${failed[*]-} " in
	*" $s "*) echo "make test: $s FAILED" ;;
	*) echo "make test: $s passed" ;;
	esac
done
if [ ${#failed[@]} -ne 0 ]; then
	echo "make test: ${#failed[@]} of ${#stages[@]} stages failed: ${failed[*]}"
	exit 1
fi
echo "make test: all ${#stages[@]} stages passed"
