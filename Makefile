# Thin wrappers over ci/ scripts and CMake. See README.md.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
DEBUG_DIR ?= build/debug
RELEASE_DIR ?= build/release
PREFIX ?= /usr/local

.PHONY: all deps deps-run build server release test run install deb bench bench-quick \
	bench-scale report format check-format clean

all: build

# What building and running need (make run, install, deb).
deps-run:
	@ci/deps.sh run

# That and the test toolchain (make test, bench).
deps:
	@ci/deps.sh test

build: deps
	@cmake -S . -B $(DEBUG_DIR) -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(DEBUG_DIR) -j $(JOBS)

# The optimised spaces-server alone (and the socket.io-client bundle it serves).
server: deps-run
	@cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(RELEASE_DIR) -j $(JOBS) --target spaces-server

# Every optimised program (the benchmarks' too).
release: deps
	@cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	@cmake --build $(RELEASE_DIR) -j $(JOBS)

test: build
	@ci/test.sh $(DEBUG_DIR)

run: server
	@ci/run.sh $(RELEASE_DIR)

# PREFIX/bin/spaces-server and PREFIX/share/spaces/ (DESTDIR is honoured).
install: server
	@cmake --install $(RELEASE_DIR) --prefix $(PREFIX)

# $(RELEASE_DIR)/spaces-server_<version>_<arch>.deb (docs/operations.md).
deb: server
	@cd $(RELEASE_DIR) && cpack -G DEB
	@ls $(RELEASE_DIR)/*.deb

bench: release
	@tests/bench/run.sh full

bench-quick: release
	@tests/bench/run.sh quick

# The seed test plan run for real: docs/TEST_RESULTS.md (QUICK=1: the short mode CI runs).
report: release
	@tests/report/run.sh $(if $(QUICK),--quick)

# 100,000 connections over a cluster of processes, ours beside Node's (tests/bench/scale.py).
bench-scale: release
	@/usr/bin/python3 tests/bench/scale.py --write-docs

format:
	@ci/format.sh fix

check-format:
	@ci/format.sh check

clean:
	rm -rf build
