# The two commands of the README:
#   make run    start a single-node paddock on 127.0.0.1:2181, data in ./data
#   make test   run every test: unit, integration (real paddock processes)
#               and the compatibility suites (real ZooKeeper clients)
#
# One build profile (release) serves the binary and the tests, so RocksDB is
# compiled once. The target directory lives outside the checkout so it
# survives fresh clones on the same machine.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/paddock/target
CARGO ?= cargo

.PHONY: run test unit compat build deps-build deps-test

run: deps-build
	$(CARGO) run --release --bin paddock -- $(ARGS)

build: deps-build
	$(CARGO) build --release --workspace

test: deps-test
	$(CARGO) test --release --workspace
	compat/against-paddock.sh
	compat/against-ensemble.sh
	compat/gozk_suite.sh
	compat/differential.sh
	compat/from-zookeeper.sh
	compat/audit.sh
	compat/kerberos.sh

unit: deps-build
	$(CARGO) test --release --workspace

compat: deps-test
	$(CARGO) build --release --bin paddock
	compat/against-paddock.sh
	compat/against-ensemble.sh
	compat/gozk_suite.sh
	compat/differential.sh
	compat/from-zookeeper.sh
	compat/audit.sh
	compat/kerberos.sh

deps-build:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test
