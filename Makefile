# ucp-audit: build, package and install the managed Docker log-driver plugin.
#
#   make install    build the binary and plugin rootfs, (re)create and enable the plugin
#   make test       vet, gofmt check, unit tests with -race, every fuzz target for
#                   FUZZTIME, then the e2e suite (needs dockerd)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
DOCKER ?= docker

PLUGIN_NAME ?= ucp-audit
BIN := bin/ucp-audit
BUILD_DIR := build
CONTEXT_DIR := $(BUILD_DIR)/context
PLUGIN_DIR := $(BUILD_DIR)/plugin
ROOTFS_IMAGE := ucp-audit-rootfs:build
ROOTFS_CONTAINER := ucp-audit-rootfs-build

# Host directories bind-mounted into the plugin (see config.json "mounts").
LOG_DIR := /var/log/ucp-audit
STATE_DIR := /var/lib/ucp-audit

# The version comes from git: the nearest tag, else the commit.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# make push: REGISTRY=host:port, TAG defaults to the version.
REGISTRY ?=
TAG ?= $(VERSION)

FUZZTIME ?= 50000x
E2E_TIMEOUT ?= 40m

.PHONY: build rootfs install install-cli uninstall push test test-unit test-e2e vet fmt-check fuzz bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ucp-audit

# The rootfs is built from a minimal context (never the whole repository) and
# the temporary image and container are removed whatever happens.
rootfs: build
	rm -rf $(CONTEXT_DIR) $(PLUGIN_DIR)
	mkdir -p $(CONTEXT_DIR)/empty $(PLUGIN_DIR)/rootfs
	cp $(BIN) $(CONTEXT_DIR)/ucp-audit
	: > $(CONTEXT_DIR)/empty-file
	# A build ID makes every rootfs unique: dockerd refuses to create a
	# plugin whose rootfs content is already stored under another name.
	echo "$(VERSION) $(COMMIT) $$(date -u +%Y-%m-%dT%H:%M:%S.%NZ) $$RANDOM" > $(CONTEXT_DIR)/build-id
	cp Dockerfile $(CONTEXT_DIR)/Dockerfile
	$(DOCKER) rm -f $(ROOTFS_CONTAINER) >/dev/null 2>&1 || true
	trap '$(DOCKER) rm -f $(ROOTFS_CONTAINER) >/dev/null 2>&1 || true; $(DOCKER) rmi -f $(ROOTFS_IMAGE) >/dev/null 2>&1 || true' EXIT; \
	DOCKER_BUILDKIT=0 $(DOCKER) build --quiet --network none -t $(ROOTFS_IMAGE) $(CONTEXT_DIR) >/dev/null; \
	$(DOCKER) create --network none --name $(ROOTFS_CONTAINER) $(ROOTFS_IMAGE) >/dev/null; \
	$(DOCKER) export $(ROOTFS_CONTAINER) | tar -x -C $(PLUGIN_DIR)/rootfs
	sed 's|"description": "ucp-audit:|"description": "ucp-audit $(VERSION):|' config.json > $(PLUGIN_DIR)/config.json
	rm -rf $(CONTEXT_DIR)

# The running containers that log through the plugin: replacing or removing
# it (disable -f) would leave them without logging until they restart, so
# install and uninstall refuse, naming them, unless FORCE=1.
define refuse_if_used
	users="$$($(DOCKER) ps -q | xargs -r $(DOCKER) inspect --format '{{.Name}} {{.HostConfig.LogConfig.Type}}' 2>/dev/null | \
		awk -v p='$(PLUGIN_NAME)' '$$2 == p || index($$2, p ":") == 1 { print substr($$1, 2) }' | tr '\n' ' ')"; \
	if [ -n "$$users" ] && [ "$(FORCE)" != 1 ]; then \
		echo "make $@: these running containers log through the plugin $(PLUGIN_NAME): $$users" >&2; \
		echo "make $@: stop them first (docker stop), or run make $@ FORCE=1: they then log nothing until they restart" >&2; \
		exit 1; \
	fi
endef

# --timeout 0: dockerd's plugin HTTP client would otherwise cut `docker logs -f`
# (ReadLogs) after 30 s.
install: rootfs
	@$(refuse_if_used)
	install -d -m 0700 $(LOG_DIR) $(STATE_DIR)
	chmod 0700 $(LOG_DIR) $(STATE_DIR)
	if $(DOCKER) plugin inspect $(PLUGIN_NAME) >/dev/null 2>&1; then \
		$(DOCKER) plugin disable -f $(PLUGIN_NAME) >/dev/null 2>&1 || true; \
		$(DOCKER) plugin rm -f $(PLUGIN_NAME) >/dev/null; \
	fi
	$(DOCKER) plugin create $(PLUGIN_NAME) $(PLUGIN_DIR)
	$(DOCKER) plugin enable --timeout 0 $(PLUGIN_NAME)

# Leaves $(LOG_DIR) (the audit trail) and $(STATE_DIR) in place.
# Push the plugin to a registry as REGISTRY/ucp-audit:TAG; the local copy
# made for pushing is removed again.
push: rootfs
	@if [ -z "$(REGISTRY)" ]; then echo "usage: make push REGISTRY=host:port [TAG=$(VERSION)]" >&2; exit 2; fi
	ref="$(REGISTRY)/$(PLUGIN_NAME):$(TAG)"; \
	$(DOCKER) plugin rm -f "$$ref" >/dev/null 2>&1 || true; \
	$(DOCKER) plugin create "$$ref" $(PLUGIN_DIR); \
	trap '$(DOCKER) plugin rm -f "'"$$ref"'" >/dev/null 2>&1 || true' EXIT; \
	$(DOCKER) plugin push "$$ref"

# The host CLI (query, report, verify, config …) on this machine. A node that
# installed the plugin from a registry has the same binary at
# $(STATE_DIR)/bin/ucp-audit, which the plugin copies there when it starts.
install-cli: build
	install -m 0755 $(BIN) /usr/local/bin/ucp-audit

uninstall:
	@$(refuse_if_used)
	if $(DOCKER) plugin inspect $(PLUGIN_NAME) >/dev/null 2>&1; then \
		$(DOCKER) plugin disable -f $(PLUGIN_NAME) >/dev/null 2>&1 || true; \
		$(DOCKER) plugin rm -f $(PLUGIN_NAME); \
	fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./tests/e2e/

fmt-check:
	@out="$$(find . -name '*.go' -not -path './build/*' -not -path './bin/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

test-unit: vet fmt-check
	$(GO) test -race ./...

test-e2e:
	$(GO) test -race -tags e2e -count=1 -v -timeout $(E2E_TIMEOUT) ./tests/e2e/

test: test-unit fuzz test-e2e

# Benchmarks (numbers, never pass/fail): the in-process pipeline next to
# json.Valid, then the fake controller under json-file, Docker's syslog
# driver, a discard plugin and ucp-audit through the local dockerd,
# interleaved (BENCH_N lines, BENCH_ROUNDS rounds; medians in build/bench.md;
# BENCH_ONLY and BENCH_DRIVERS, regular expressions, pick workloads and
# drivers by name). See BENCHMARKS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./driver/...
	$(GO) test -tags 'e2e bench' -count=1 -v -timeout 120m -run '^TestBench$$' ./tests/e2e/

# Short fuzz runs: every Fuzz* function found under the module, FUZZTIME
# each. All targets run; the target fails if any of them failed. (A failing
# input is written to the package's testdata/fuzz/ by go test, as usual.)
# FUZZTIME is a count of executions by default, not a duration: Go 1.26's
# fuzz coordinator can fail a duration-bounded run with a bare "context
# deadline exceeded" when the time runs out (go.dev/issue/75804, fixed in
# Go 1.27); CI hit it. A duration (FUZZTIME=5m) still works for long hunts.
fuzz:
	fail=0; \
	for pkg in $$($(GO) list ./...); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for f in $$(grep -hoE '^func Fuzz[A-Za-z0-9_]+' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || fail=1; \
		done; \
	done; \
	exit $$fail

clean:
	rm -rf bin $(BUILD_DIR)
	$(DOCKER) rm -f $(ROOTFS_CONTAINER) >/dev/null 2>&1 || true
	$(DOCKER) rmi -f $(ROOTFS_IMAGE) >/dev/null 2>&1 || true
