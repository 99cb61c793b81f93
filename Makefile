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

STAMPS := $(GOBIN)/.bachata-tools
TOOLS  := $(STAMPS)/buf-$(BUF_VERSION) \
          $(STAMPS)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION) \
          $(STAMPS)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION) \
          $(STAMPS)/golangci-lint-$(GOLANGCI_LINT_VERSION)

# Every Go module of the workspace.
MODULES := libs proto/gen/go services/gateway services/router services/delivery services/presence deploy/local e2e examples/app-echo examples/profanity-router
# Package patterns across the workspace (go.work makes them one build).
PKGS    := $(addprefix ./,$(addsuffix /...,$(MODULES)))

# Fuzz targets as package:Target. `make test` runs each for FUZZ_SMOKE
# inputs, `make fuzz` for FUZZ_TIME. The smoke run counts inputs rather
# than time: when a duration runs out on a busy machine, the fuzzing engine
# can fail with a spurious "context deadline exceeded".
FUZZ_TARGETS := libs/protocol:FuzzDecode libs/protocol:FuzzParseData libs/entity:FuzzParse services/gateway/internal/wsio:FuzzServe
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
unit: deps ## go test with -race and -shuffle over every module
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
test: deps tools check-generated lint vet unit fuzz-smoke ## everything CI checks

.PHONY: bench
bench: ## run the Go benchmarks
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

BIN := $(CURDIR)/bin
.PHONY: build
build: ## build the four service binaries into bin/
	@mkdir -p $(BIN)
	@for s in gateway router delivery presence; do $(GO) build -o $(BIN)/$$s ./services/$$s/cmd/$$s; done

.PHONY: run
run: deps build ## the whole suite on this machine, in the foreground (Ctrl-C stops it)
	$(GO) run ./deploy/local $(BIN)

.PHONY: token
token: ## print a development token: make token NAME=alice
	@$(GO) run ./deploy/local token $(NAME)

# Helm chart checks (not part of `make test`).
HELM_VERSION := v3.22.0

$(STAMPS)/helm-%:
	$(GO) install helm.sh/helm/v3/cmd/helm@$*
	@mkdir -p $(STAMPS) && touch $@

.PHONY: chart-lint
chart-lint: $(STAMPS)/helm-$(HELM_VERSION) ## helm lint and template the chart
	helm lint charts/bachata
	helm template t charts/bachata > /dev/null
