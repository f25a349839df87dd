# relaykeeper's everyday commands. `make test` is what CI runs (.ci/run):
# it installs the real peers the tests use (Postfix, swaks) and runs every
# test with the race detector.

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test deps fmt lint bench fuzz clean install install-sendmail man

# Where "make install" puts things; DESTDIR is prepended to every path, for
# packaging into a staging directory.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/relaykeeper
SYSCONFDIR ?= /etc
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/relaykeeper ./cmd/relaykeeper

deps:
	bash scripts/test-deps.sh
	$(GO) mod download

# The e2e package took 15 minutes on two quiet cores with go test's default
# of as many parallel tests as cores; its tests mostly wait on processes and
# sockets, so four at a time (-parallel 4) shorten the wall time (1,160 s at
# a load of 30, with a session's helpers beside it). The timeout
# is a guard against a hung test, with room for a slower or busier machine.
test: deps build
	$(GO) vet ./...
	RELAYKEEPER_BIN=$(CURDIR)/bin/relaykeeper $(GO) test -race -count=1 -timeout 25m -parallel 4 ./...

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

# The man pages under docs/man are generated from the switch table, the
# configuration structs and the usage texts; a test fails when they drift.
man:
	$(GO) generate ./cmd/relaykeeper

# install puts the binary, the man pages, bash completion, the example
# configuration (never over an existing file), the fail2ban filter and the
# systemd unit with its sysusers.d and tmpfiles.d entries in place. BIN is
# the binary to install; INSTALL_DEPS= installs it without building first.
BIN          ?= bin/relaykeeper
INSTALL_DEPS ?= build
install: $(INSTALL_DEPS)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR)/screenshots $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/relaykeeper \
		$(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d $(DESTDIR)$(SYSCONFDIR)/fail2ban/jail.d \
		$(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(COMPLETIONDIR) $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	install -m 755 $(BIN) $(DESTDIR)$(SBINDIR)/relaykeeper
	install -m 644 docs/man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 docs/man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 LICENSE docs/metrics-sample.txt $(DESTDIR)$(DOCDIR)/
	# The docs go beside README.md, so its docs/ paths lose the prefix; the
	# docs' ../etc/ links name the installed configuration instead.
	sed 's|docs/||g' README.md > $(DESTDIR)$(DOCDIR)/README.md
	for f in docs/*.md; do \
		sed 's|](\.\./etc/|]($(SYSCONFDIR)/relaykeeper/|g' $$f > $(DESTDIR)$(DOCDIR)/$${f##*/}; \
	done
	chmod 644 $(DESTDIR)$(DOCDIR)/*.md
	install -m 644 docs/screenshots/*.png $(DESTDIR)$(DOCDIR)/screenshots/
	install -m 644 etc/prometheus/relaykeeper-alerts.yml etc/grafana-dashboard.json $(DESTDIR)$(DOCDIR)/examples/
	$(BIN) completion bash > $(DESTDIR)$(COMPLETIONDIR)/relaykeeper
	for f in relaykeeper.toml enforce-rules.conf welcomelist; do \
		test -e $(DESTDIR)$(SYSCONFDIR)/relaykeeper/$$f || \
			install -m 644 etc/$$f $(DESTDIR)$(SYSCONFDIR)/relaykeeper/$$f; \
	done
	install -m 644 etc/logrotate.d/relaykeeper $(DESTDIR)$(SYSCONFDIR)/logrotate.d/relaykeeper
	install -m 644 etc/fail2ban/filter.d/* $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d/
	for f in etc/fail2ban/jail.d/*; do \
		test -e $(DESTDIR)$(SYSCONFDIR)/fail2ban/jail.d/$${f##*/} || \
			install -m 644 $$f $(DESTDIR)$(SYSCONFDIR)/fail2ban/jail.d/; \
	done
	sed 's|/usr/local/sbin/relaykeeper|$(SBINDIR)/relaykeeper|g; s|/etc/relaykeeper/|$(SYSCONFDIR)/relaykeeper/|g' \
		etc/relaykeeper.service > $(DESTDIR)$(SYSTEMDDIR)/relaykeeper.service
	sed 's|/usr/local/sbin/relaykeeper|$(SBINDIR)/relaykeeper|g' \
		etc/relaykeeper-postfix-enforcer.service > $(DESTDIR)$(SYSTEMDDIR)/relaykeeper-postfix-enforcer.service
	install -m 644 etc/sysusers.d/relaykeeper.conf $(DESTDIR)$(SYSUSERSDIR)/relaykeeper.conf
	install -m 644 etc/tmpfiles.d/relaykeeper.conf $(DESTDIR)$(TMPFILESDIR)/relaykeeper.conf

# install-sendmail makes the binary answer as sendmail, mailq and newaliases
# (see docs/sendmail.md). Not part of install: it replaces the system's MTA.
# The links go where callers look whatever PREFIX is: /usr/sbin/sendmail
# (cron, PHP's mail(), git send-email call it by that path), and mailq and
# newaliases in /usr/bin, as Debian's Postfix puts them.
SENDMAILDIR ?= /usr/sbin
MAILQDIR    ?= /usr/bin
install-sendmail: install
	install -d $(DESTDIR)$(SENDMAILDIR) $(DESTDIR)$(MAILQDIR)
	ln -sf $(SBINDIR)/relaykeeper $(DESTDIR)$(SENDMAILDIR)/sendmail
	for n in mailq newaliases; do \
		ln -sf $(SBINDIR)/relaykeeper $(DESTDIR)$(MAILQDIR)/$$n; \
	done
