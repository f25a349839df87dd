# relaykeeper's everyday commands. `make test` is what CI runs (.ci/run):
# it installs the real peers the tests use (Postfix, swaks) and runs every
# test with the race detector.

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test deps fmt lint bench fuzz clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/relaykeeper ./cmd/relaykeeper

deps:
	bash scripts/test-deps.sh
	$(GO) mod download

test: deps build
	$(GO) vet ./...
	RELAYKEEPER_BIN=$(CURDIR)/bin/relaykeeper $(GO) test -race -count=1 -timeout 14m ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

# Fuzz every parser briefly; the corpora under testdata/fuzz are kept.
fuzz:
	$(GO) test -run XXX -fuzz FuzzUnmarshal -fuzztime 30s ./internal/spool/
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime 30s ./internal/maillog/
	$(GO) test -run XXX -fuzz FuzzLoad -fuzztime 30s ./internal/config/

bench: build deps
	bash bench/run.sh

clean:
	rm -rf bin bench/out
