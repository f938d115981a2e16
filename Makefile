# mimo: every entry point a developer or CI needs. Meson + Ninja do the building; this file
# wires set-up, sanitizer builds, tests, benchmarks and fuzzing together. See README.md.

BUILD      := build
MESON_DIR  := $(BUILD)/meson
ASAN_DIR   := $(BUILD)/asan
TSAN_DIR   := $(BUILD)/tsan
FUZZ_DIR   := $(BUILD)/fuzz
# Debian's pytest and flask belong to the system interpreter, not the first python3 on PATH.
PY         := /usr/bin/python3
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
PYTEST_ARGS ?=

MESON_PREFIX := --prefix=$(CURDIR)/$(BUILD) --bindir=bin --libdir=lib --includedir=include
# Tests and benchmarks find the programs of this build.
export MIMO_BUILD := $(BUILD)

# A failing command anywhere in a pipe fails the recipe.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all deps build run test unit integration test-guest guest-image test-asan test-tsan bench \
	fuzz clean format

all: build

deps:
	@scripts/deps.sh

# Programs land in build/bin and libraries in build/lib: meson installs into the build tree.
# libspdk_go_notify.so used to be a library of its own and is now a link to libmimo_notify:
# meson will not put a link where a file is, so a tree built before that loses the file first.
unstale = f=$(1)/lib/libspdk_go_notify.so; [ -L $$f ] || rm -f $$f
build: deps
	@[ -f $(MESON_DIR)/build.ninja ] || meson setup $(MESON_DIR) $(MESON_PREFIX) >/dev/null
	@ninja -C $(MESON_DIR) | sed '/^ninja: /d'
	@$(call unstale,$(BUILD))
	@meson install -C $(MESON_DIR) --no-rebuild --quiet >/dev/null

run: build
	@scripts/run.sh

# Every stage runs even when one fails; the summary names the failed ones (scripts/test.sh).
test: build
	@scripts/test.sh unit integration test-asan test-tsan

unit: build
	meson test -C $(MESON_DIR) --suite unit --print-errorlogs -q

# -rs: the reason of each skipped test (a guest test skips when Debian's archive is out of reach).
integration: build
	$(PY) -m pytest -q -rs test/integration $(PYTEST_ARGS)

# Only the tests with a kernel client in a QEMU guest (docs/guest-tests.md); they are part of
# `make integration` too.
test-guest: build
	$(PY) -m pytest -q -rs -m guest test/integration $(PYTEST_ARGS)

# Download and build the guest's image (build/guest) without running a test.
guest-image: deps
	$(PY) test/guest/image.py

# Sanitizer builds install into their own tree (programs in <dir>-root/bin, as build/bin), so
# every integration test can run against them through MIMO_BUILD.
ASAN_ROOT  := $(BUILD)/asan-root
TSAN_ROOT  := $(BUILD)/tsan-root

# Every unit test and every integration test, under ASan + UBSan.
test-asan: deps
	@[ -f $(ASAN_DIR)/build.ninja ] || meson setup $(ASAN_DIR) -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debug \
		--prefix=$(CURDIR)/$(ASAN_ROOT) --bindir=bin --libdir=lib --includedir=include >/dev/null
	@ninja -C $(ASAN_DIR) >/dev/null
	@$(call unstale,$(ASAN_ROOT))
	@meson install -C $(ASAN_DIR) --no-rebuild --quiet >/dev/null
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		meson test -C $(ASAN_DIR) --suite unit --print-errorlogs -q
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
		MIMO_BUILD=$(ASAN_ROOT) MIMO_SANITIZE=address,undefined $(PY) -m pytest -q -rs test/integration $(PYTEST_ARGS)

# The tests that exercise threads, under ThreadSanitizer: the threaded unit tests, and the
# integration tests of the threaded programs (agent, gateway, plugin SDK, mimo_perf, the event
# bridge), of queues served on other reactors than their session's (vhost-user-blk with split
# and packed rings, vhost-user-scsi), of the bdev layer's state shared by reactors (statistics,
# QoS, bdevs and their stacks deleted under I/O on two reactors), and the metrics endpoint's
# thread reading what reactors and the agent's threads count.
test-tsan: deps
	@[ -f $(TSAN_DIR)/build.ninja ] || meson setup $(TSAN_DIR) -Db_sanitize=thread \
		-Db_lundef=false -Dbuildtype=debug \
		--prefix=$(CURDIR)/$(TSAN_ROOT) --bindir=bin --libdir=lib --includedir=include >/dev/null
	@ninja -C $(TSAN_DIR) >/dev/null
	@$(call unstale,$(TSAN_ROOT))
	@meson install -C $(TSAN_DIR) --no-rebuild --quiet >/dev/null
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		meson test -C $(TSAN_DIR) --suite threads --print-errorlogs -q
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 MIMO_BUILD=$(TSAN_ROOT) MIMO_SANITIZE=thread \
		$(PY) -m pytest -q test/integration/test_agent.py test/integration/test_agent_nats.py \
		test/integration/test_nvme.py test/integration/test_fuse.py \
		test/integration/test_hostile.py test/integration/test_notify.py test/integration/test_vhost.py \
		test/integration/test_vhost_scsi.py test/integration/test_vhost_packed.py \
		test/integration/test_bdev.py test/integration/test_bdev_delete.py \
		test/integration/test_bdev_qos.py test/integration/test_metrics.py \
		$(PYTEST_ARGS)

bench: build
	$(PY) bench/run.py

# libFuzzer targets, each run for FUZZ_SECONDS on its corpus (test/fuzz/corpus/<target>);
# FUZZ_TARGETS="jsonrpc jsonrpc_parse" runs only those.
fuzz: deps
	@[ -f $(FUZZ_DIR)/build.ninja ] || CC=clang meson setup $(FUZZ_DIR) -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C $(FUZZ_DIR) >/dev/null
	$(PY) test/fuzz/run.py --build $(FUZZ_DIR) --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
