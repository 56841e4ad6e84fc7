# kiln — the two commands of the quick start are `make demo` and `make test`.
# Both install what is missing first (scripts/setup is idempotent).
SHELL := /bin/bash
JOBS ?= $(shell nproc)

.PHONY: all setup build test demo bench asan fuzz format clean

all: build

setup:
	@scripts/setup

# The release build; the binary ends up at build/kiln.
build: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)
	@ln -sf release/kiln build/kiln

test: build
	@ctest --test-dir build/release --output-on-failure -j $(JOBS)

# The demo needs only the binary (and the dashboard's web app), not the tests.
demo: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS) --target kiln $$(command -v npm >/dev/null && echo kiln_web)
	@ln -sf release/kiln build/kiln
	@scripts/demo

# Peer comparisons (slow; not part of `make test`).
bench: build
	@bench/stats_vs_pandas
	@bench/metadata_vs_backends
	@.venv/bin/python bench/train_gbdt_vs_python
	@bench/train_vs_pytorch
	@bench/serve_vs_peers
	@bench/pipeline_overhead

# Every test under AddressSanitizer + UBSan.
asan: setup
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	@ctest --preset asan -j $(JOBS)

# Builds the libFuzzer targets and runs each for FUZZ_SECONDS (default 60).
fuzz: setup
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS)
	@scripts/fuzz $(or $(FUZZ_SECONDS),60)

format:
	@clang-format -i $$(git ls-files "src/*.cc" "src/*.h" "fuzz/*.cc" "fuzz/*.h" "bench/*.cc")

clean:
	rm -rf build
