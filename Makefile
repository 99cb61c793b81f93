# Bachata — one Makefile for the whole suite. `make run` and `make test` are
# the two commands a fresh machine with Go needs; everything else they need
# is installed on the way, pinned.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
GOBIN   := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

# Pinned tool versions. Installed with `go install module@version` into the
# Go bin directory; a stamp per version skips the install next time.
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GOLANGCI_LINT_VERSION      := v2.15.0
HELM_VERSION               := v3.22.0

STAMPS := $(GOBIN)/.bachata-tools
# helm is built from source (a few minutes the first time), so only the
# targets that run it depend on it: unit (deploy/charttest) and chart-lint.
HELM   := $(STAMPS)/helm-$(HELM_VERSION)
TOOLS  := $(STAMPS)/buf-$(BUF_VERSION) \
          $(STAMPS)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION) \
          $(STAMPS)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION) \
          $(STAMPS)/golangci-lint-$(GOLANGCI_LINT_VERSION)

# Every Go module of the workspace.
MODULES := libs proto/gen/go services/gateway services/router services/delivery services/presence deploy/local e2e examples/app-echo examples/profanity-router tools/load deploy/images deploy/charttest deploy/cluster
# Package patterns across the workspace (go.work makes them one build).
PKGS    := $(addprefix ./,$(addsuffix /...,$(MODULES)))

# Fuzz targets as package:Target. `make test` runs each for FUZZ_SMOKE
# inputs, `make fuzz` for FUZZ_TIME. The smoke run counts inputs rather
# than time: when a duration runs out on a busy machine, the fuzzing engine
# can fail with a spurious "context deadline exceeded".
FUZZ_TARGETS := libs/protocol:FuzzDecode libs/protocol:FuzzParseData libs/entity:FuzzParse services/gateway/internal/wsio:FuzzServe services/gateway/internal/ws:FuzzFramePath services/gateway/internal/origin:FuzzAllow libs/embedredis:FuzzReadCommand libs/embedredis:FuzzScanJournal
FUZZ_SMOKE   ?= 20000x
FUZZ_TIME    ?= 2m

# buf breaking compares the protos with those on this ref.
BREAKING_AGAINST ?= main

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMPS)/buf-%:
	$(GO) install github.com/bufbuild/buf/cmd/buf@$*
	@mkdir -p $(STAMPS) && touch $@
$(STAMPS)/protoc-gen-go-grpc-%:
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$*
	@mkdir -p $(STAMPS) && touch $@
$(STAMPS)/protoc-gen-go-%:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$*
	@mkdir -p $(STAMPS) && touch $@
$(STAMPS)/golangci-lint-%:
	$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$*
	@mkdir -p $(STAMPS) && touch $@

.PHONY: tools
tools: $(TOOLS) ## install the pinned tools (buf, protoc plugins, golangci-lint)

.PHONY: deps
deps: ## install redis-server from apt when missing (the tests start their own)
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@redis-server --version

.PHONY: generate
generate: tools ## regenerate protobuf code, format protos, tidy modules
	buf format -w
	buf generate
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

.PHONY: check-generated
check-generated: tools ## fail when generated code, proto formatting or go.mod files are stale
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	buf generate -o "$$tmp"; \
	diff -r -x go.mod -x go.sum "$$tmp/proto/gen/go" proto/gen/go || { echo "generated code is stale: run 'make generate'"; exit 1; }
	@buf format --diff --exit-code >/dev/null || { echo "protos are not formatted: run 'make generate'"; exit 1; }
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff >/dev/null) || { echo "$$m: go.mod/go.sum not tidy: run 'make generate'"; exit 1; }; done

.PHONY: lint
lint: tools ## golangci-lint per module, buf lint, buf format, buf breaking
	@for m in $(MODULES); do echo "golangci-lint $$m"; (cd $$m && golangci-lint run ./...); done
	buf lint
	buf format --diff --exit-code
	@if git rev-parse --verify -q $(BREAKING_AGAINST) >/dev/null && git cat-file -e $(BREAKING_AGAINST):buf.yaml 2>/dev/null; then \
	  echo "buf breaking against $(BREAKING_AGAINST)"; buf breaking --against '.git#ref=$(BREAKING_AGAINST)'; \
	else echo "buf breaking: no protos on $(BREAKING_AGAINST) yet, nothing to compare"; fi

.PHONY: vet
vet: ## go vet every module
	$(GO) vet $(PKGS)

.PHONY: unit
unit: deps $(HELM) ## go test with -race and -shuffle over every module
	$(GO) test -race -shuffle=on -count=1 -timeout 15m $(PKGS)

.PHONY: fuzz-smoke
fuzz-smoke: ## run every fuzz target briefly
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn $(FUZZ_SMOKE)"; \
	  $(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZ_SMOKE) ./$$pkg; done

.PHONY: fuzz
fuzz: FUZZ_SMOKE = $(FUZZ_TIME)
fuzz: fuzz-smoke ## run every fuzz target for FUZZ_TIME (default 2m each)

.PHONY: test
test: deps tools check-generated lint vet unit fuzz-smoke sdk-test browser-test ## everything CI checks

# The TypeScript SDK (libs/sdk-ts) is tested with Node's test runner against
# the real suite, which its tests build and start on ports of their own. It
# needs Node >= 20 with npm: when node is missing, nodejs and npm come from
# apt-get like redis-server; when the node found is older (Debian 12 ships
# 18) or has no npm, the SDK tests are skipped with a message, not failed.
.PHONY: sdk-test
sdk-test: deps ## the TypeScript SDK's tests (npm ci, npm test in libs/sdk-ts)
	@command -v node >/dev/null || { \
	  echo "installing nodejs and npm with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	@if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || ! command -v npm >/dev/null; then \
	  echo "sdk-test: SKIPPED: needs Node >= 20 with npm, found node $$(node --version) and npm $$(npm --version 2>/dev/null || echo missing); install Node 20+ (e.g. from NodeSource) to run it"; \
	else (cd libs/sdk-ts && npm ci --no-audit --no-fund && npm test) && $(MAKE) --no-print-directory webui-check; fi

# The gateway embeds the demo chat page (services/gateway/internal/webui),
# with the SDK's compiled modules copied into it and committed, so that
# `go build` never needs Node. `make webui` rebuilds the SDK and refreshes
# the copy; `make sdk-test` fails when the copy differs from a fresh build.
WEBUI_SDK := services/gateway/internal/webui/static/sdk
# webui-sdk-copy DIR: libs/sdk-ts/dist/*.js into DIR, each with a header and
# without its source map comment (the maps are not served).
define webui-sdk-copy
rm -rf $(1) && mkdir -p $(1) && for f in libs/sdk-ts/dist/*.js; do n=$$(basename $$f); \
  { echo "// Generated by \`make webui\` from libs/sdk-ts/src/$${n%.js}.ts. DO NOT EDIT."; \
    sed '/^\/\/# sourceMappingURL=/d' $$f; } > $(1)/$$n; done
endef

.PHONY: webui
webui: ## rebuild the TypeScript SDK and copy it into the gateway's chat page (commit the result)
	cd libs/sdk-ts && npm ci --no-audit --no-fund && npm run build
	@$(call webui-sdk-copy,$(WEBUI_SDK))
	@echo "webui: $(WEBUI_SDK) refreshed from libs/sdk-ts/dist"

.PHONY: webui-check
webui-check: # after the SDK's build: fail when the gateway's copy of it is stale
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; $(call webui-sdk-copy,$$tmp/sdk); \
	diff -r "$$tmp/sdk" $(WEBUI_SDK) >/dev/null || { diff -r "$$tmp/sdk" $(WEBUI_SDK) | head -20 || true; \
	  echo "webui: $(WEBUI_SDK) is stale against libs/sdk-ts: run make webui"; exit 1; }
	@echo "webui: the gateway's copy of the SDK is fresh"

# The chat page end to end in headless Chromium (Debian's chromium, driven
# by playwright-core from tests/browser) against the real suite, started by
# the SDK's test harness. Chromium comes from apt-get when missing; where it
# cannot be installed, or Node is older than 20, the test is skipped with a
# message. SCREENSHOTS=docs/img writes the screenshots for the docs there
# (default: tests/browser/out, not committed).
SCREENSHOTS ?= tests/browser/out
.PHONY: browser-test
browser-test: deps ## the chat page in headless Chromium: two users chat, go offline, come back (tests/browser)
	@if ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || ! command -v npm >/dev/null; then \
	  echo "browser-test: SKIPPED: needs Node >= 20 with npm (see sdk-test)"; exit 0; fi; \
	if ! command -v chromium >/dev/null; then \
	  echo "installing chromium with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; } || true; fi; \
	if ! command -v chromium >/dev/null; then \
	  echo "browser-test: SKIPPED: Chromium is not installed and apt-get could not install it (apt-get install chromium)"; exit 0; fi; \
	(cd libs/sdk-ts && npm ci --no-audit --no-fund && npm run build:test) && \
	cd tests/browser && npm ci --no-audit --no-fund && CHROMIUM="$$(command -v chromium)" SCREENSHOT_DIR="$(abspath $(SCREENSHOTS))" npm test

.PHONY: bench
bench: ## run the Go benchmarks
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

BIN := $(CURDIR)/bin
.PHONY: build
build: ## build the four service binaries into bin/
	@mkdir -p $(BIN)
	@for s in gateway router delivery presence; do $(GO) build -o $(BIN)/$$s ./services/$$s/cmd/$$s; done

.PHONY: run
run: build ## the whole suite on this machine, in the foreground (Ctrl-C stops it); needs only Go
	$(GO) run ./deploy/local $(BIN)

.PHONY: cluster
cluster: build ## a scaled-out suite on loopback: 3-node NATS cluster, Redis (ARGS=-redis-cluster for a Redis Cluster), two of each service; logs in .cache/cluster/logs
	@$(GO) build -o $(BIN)/bachata-cluster ./deploy/cluster
	$(BIN)/bachata-cluster -bin $(BIN) $(ARGS)

.PHONY: token
token: ## print a development token: make token NAME=alice
	@$(GO) run ./deploy/local token $(NAME)

# Helm chart checks. `make test` runs the full ones through
# deploy/charttest (lint, render under every charts/bachata/ci values file,
# strict decoding into the Kubernetes API types, policy); chart-lint is the
# quick form.
$(STAMPS)/helm-%:
	$(GO) install helm.sh/helm/v3/cmd/helm@$*
	@mkdir -p $(STAMPS) && touch $@

.PHONY: chart-lint helm-lint
chart-lint: $(HELM) ## helm lint and template the chart under every ci/*-values.yaml
	@for f in charts/bachata/ci/*-values.yaml; do echo "helm lint + template -f $$f"; \
	  helm lint --strict --quiet charts/bachata -f $$f; helm template t charts/bachata -f $$f >/dev/null; done
helm-lint: chart-lint

# Container images, built without a Docker daemon by deploy/images: a static
# binary (CGO_ENABLED=0) and a CA bundle in one layer, no base image, user
# 65532, OCI labels; one .cache/images/<service>.tar each, an OCI layout
# with docker's manifest.json (docker load, kind load image-archive, ctr
# import, skopeo copy oci-archive:, crane push). The tag defaults to the
# chart's appVersion, which the chart's image tags default to.
IMAGES_DIR     ?= $(CURDIR)/.cache/images
IMAGE_REGISTRY ?= ghcr.io/bachata-chat
IMAGE_VERSION  ?= $(shell awk -F'"' '/^appVersion:/ {print $$2}' charts/bachata/Chart.yaml)
IMAGE_ARCH     ?= $(shell $(GO) env GOARCH)

.PHONY: images
images: ## container images of the four services into .cache/images/<service>.tar (no Docker needed)
	$(GO) run ./deploy/images -out $(IMAGES_DIR) -registry $(IMAGE_REGISTRY) -version $(IMAGE_VERSION) -arch $(IMAGE_ARCH) \
	  -revision "$$(git rev-parse HEAD 2>/dev/null || true)" -created "$$(git log -1 --format=%cI 2>/dev/null || true)"
