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

# staticcheck is pinned by version and fetched through the Go module proxy
# on first use, so that lint needs no tools file and no global install.
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Fuzz every parser briefly (FUZZTIME each); the corpora under testdata/fuzz
# are kept. The seeds in testdata/fuzz also run with every plain `go test`.
# Every Fuzz function in the tree is found by `go test -list`, so a new
# target needs no entry here; FUZZ_PKGS narrows the run (./internal/smtpd/).
FUZZTIME ?= 20s
FUZZ_PKGS ?= ./...

fuzz:
	@for pkg in $$($(GO) list $(FUZZ_PKGS)); do \
		for fn in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$fn"; \
			$(GO) test -run XXX -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg || exit 1; \
		done; \
	done

bench: build deps
	bash bench/run.sh

clean:
	rm -rf bin bench/out
