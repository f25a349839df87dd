#!/bin/sh
# test-deps.sh: install the programs that the end-to-end tests drive through
# test/harness: Postfix (postfix, postconf, postqueue, smtp-sink,
# smtp-source, and postfix-pcre for its pcre: tables), swaks, and Cyrus SASL's sasldb tools for a Postfix that
# requires AUTH (sasl2-bin, libsasl2-modules), SpamAssassin's spamd and
# OpenDKIM for the filter and milter tests, postgrey as a policy service
# (check_policy_service), Chromium for the admin dashboard's browser tests,
# man-db/groff to render the man pages, fail2ban to check the shipped
# filters and jails with fail2ban-regex and fail2ban-client, and systemd's
# systemd-analyze to verify the shipped unit; and what a minimal Debian may
# lack: python3 (poplib and smtplib as clients), iproute2 (network
# namespaces for remote clients), util-linux's setpriv and unshare, script,
# mkfs.ext4 (a full disk on a loop device), make, strace (system-call fault
# injection, TestDur19*). Idempotent: it installs
# nothing when they are all present. Called by "make test" before "go test".
#
# It never starts, stops or reconfigures the system's own Postfix: the tests
# run private instances on loopback ports of their own. On a fresh install
# the package is preseeded with "No configuration", so that installing it
# does not set up or start a system mail server either.
set -eu

# Debian keeps these in sbin, which a non-root PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"

missing=""
for pair in postfix:postfix postconf:postfix postqueue:postfix \
	smtp-sink:postfix smtp-source:postfix swaks:swaks \
	saslpasswd2:sasl2-bin openssl:openssl \
	spamd:spamd spamassassin:spamassassin opendkim:opendkim opendkim-genkey:opendkim-tools \
	chromium:chromium man:man-db groff:groff-base postgrey:postgrey \
	fail2ban-regex:fail2ban fail2ban-client:fail2ban systemd-analyze:systemd \
	python3:python3 ip:iproute2 setpriv:util-linux unshare:util-linux script:bsdutils \
	mkfs.ext4:e2fsprogs make:make strace:strace; do
	cmd=${pair%%:*}
	pkg=${pair#*:}
	if ! command -v "$cmd" >/dev/null 2>&1; then
		case " $missing " in
		*" $pkg "*) ;;
		*) missing="$missing $pkg" ;;
		esac
	fi
done

# Library packages, with no command to look for: postfix-pcre gives the
# private Postfix instances pcre: tables (TestRevPF5*).
if command -v dpkg-query >/dev/null 2>&1; then
	for pkg in libsasl2-modules postfix-pcre; do
		if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
			missing="$missing $pkg"
		fi
	done
fi

if [ -z "$missing" ]; then
	exit 0
fi
echo "test-deps: installing:$missing" >&2

if ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: no apt-get here; install$missing by hand" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo="sudo"
	else
		echo "test-deps: need root (or password-less sudo) to install$missing" >&2
		exit 1
	fi
fi

case " $missing " in
*" postfix "*)
	if command -v debconf-set-selections >/dev/null 2>&1; then
		echo "postfix postfix/main_mailer_type select No configuration" |
			$sudo debconf-set-selections
	fi
	;;
esac

$sudo env DEBIAN_FRONTEND=noninteractive apt-get update
# $missing is a list of package names; split it on purpose.
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
