// Package srs rewrites envelope senders with the Sender Rewriting Scheme
// in postsrsd's format, so that mail the relay forwards for other domains
// passes SPF as the relay's own, and bounces to it find their way back.
//
// A forwarded sender alice@example.com becomes
//
//	SRS0=HHHH=TT=example.com=alice@relay.example
//
// where TT is the day (base 32, modulo 1024) and HHHH the first four base64
// characters of HMAC-SHA1(secret, lower(TT + "example.com" + "alice")), as
// libsrs2 and postsrsd compute them. An SRS0 address of another forwarder is
// wrapped rather than rewritten again (SRS1, "guarded"):
//
//	SRS1=HHHH=forwarder.example==GGGG=TT=example.com=alice@relay.example
//
// and an SRS1 address gets a new hash and the relay's domain.
//
// Reading an address back is only done for addresses whose hash verifies
// with one of the relay's own secrets, and whose day is within MaxAge: an
// SRS address anyone can write ("SRS0=abcd=XY=gmail.com=bob@attacker.example")
// is never read as gmail.com's. A Rewriter is safe for concurrent use.
package srs

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

const (
	// hashLen is postsrsd's hash length (libsrs2's default).
	hashLen = 4
	// timeBase is libsrs2's SRS_TIME_BASECHARS; a timestamp is the day
	// number modulo timeSlots, in two of these characters.
	timeBase  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	timeSlots = 1024
	day       = 24 * time.Hour
	// DefaultMaxAge is how long an SRS address stays valid: postsrsd's
	// default of 21 days.
	DefaultMaxAge = 21 * day
)

// Errors Reverse returns for the relay's own SRS addresses that do not
// verify.
var (
	ErrHash    = errors.New("srs: hash does not verify")
	ErrExpired = errors.New("srs: timestamp expired")
	ErrSyntax  = errors.New("srs: malformed SRS address")
)

// Rewriter encodes and decodes SRS addresses of one domain with its
// secrets.
type Rewriter struct {
	// Domain is the relay's SRS domain, the one of every address it
	// writes (postsrsd's SRS_DOMAIN).
	Domain string
	// MaxAge is how old an address may be; zero means DefaultMaxAge.
	MaxAge time.Duration
	// Clock gives the time; nil means time.Now.
	Clock func() time.Time

	secrets [][]byte // the first signs; any verifies
}

// New returns a Rewriter for domain with secrets: the first signs new
// addresses, and any of them verifies one (postsrsd's secret file, one
// secret per line, so that a secret can be changed without losing the
// bounces to addresses written with the old one).
func New(domain string, secrets []string) (*Rewriter, error) {
	domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	if domain == "" || strings.ContainsAny(domain, "@<> ") {
		return nil, fmt.Errorf("srs: bad domain %q", domain)
	}
	r := &Rewriter{Domain: domain}
	for _, s := range secrets {
		if s != "" {
			r.secrets = append(r.secrets, []byte(s))
		}
	}
	if len(r.secrets) == 0 {
		return nil, errors.New("srs: no secret")
	}
	return r, nil
}

// Load returns a Rewriter for domain with the secrets in the file at path
// (LoadSecrets).
func Load(path, domain string) (*Rewriter, error) {
	secrets, err := LoadSecrets(path)
	if err != nil {
		return nil, err
	}
	return New(domain, secrets)
}

// LoadSecrets reads postsrsd's secret file: one secret per line, the first
// the one that signs. Empty lines are skipped.
func LoadSecrets(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("srs: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	n := 1
	for ; sc.Scan(); n++ {
		if s := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("srs: %s:%d: a line longer than %d bytes; a secret is one short line", path, n, bufio.MaxScanTokenSize)
		}
		return nil, fmt.Errorf("srs: %s:%d: %w", path, n, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("srs: %s: no secret in the file", path)
	}
	return out, nil
}

func (r *Rewriter) now() time.Time {
	if r.Clock != nil {
		return r.Clock()
	}
	return time.Now()
}

// hash is libsrs2's srs_hash_create: HMAC-SHA1 over the lower-cased parts,
// base64, the first hashLen characters.
func hash(secret []byte, parts ...string) string {
	m := hmac.New(sha1.New, secret)
	for _, p := range parts {
		m.Write([]byte(strings.ToLower(p)))
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))[:hashLen]
}

// verify reports whether h is the hash of parts under one of the secrets;
// like libsrs2, case does not matter (a mailer may lower-case the local
// part).
func (r *Rewriter) verify(h string, parts ...string) bool {
	if len(h) != hashLen {
		return false
	}
	for _, s := range r.secrets {
		if hmac.Equal([]byte(strings.ToLower(hash(s, parts...))), []byte(strings.ToLower(h))) {
			return true
		}
	}
	return false
}

// stamp is the day of t in two base-32 characters.
func stamp(t time.Time) string {
	d := (t.Unix() / int64(day/time.Second)) % timeSlots
	return string([]byte{timeBase[d>>5&31], timeBase[d&31]})
}

// fresh reports whether the stamp ts is within MaxAge of now.
func (r *Rewriter) fresh(ts string) bool {
	if len(ts) != 2 {
		return false
	}
	hi := strings.IndexByte(timeBase, upper(ts[0]))
	lo := strings.IndexByte(timeBase, upper(ts[1]))
	if hi < 0 || lo < 0 {
		return false
	}
	then := int64(hi<<5 | lo)
	now := (r.now().Unix() / int64(day/time.Second)) % timeSlots
	for now < then {
		now += timeSlots
	}
	maxAge := r.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	return now-then <= int64(maxAge/day)
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// split cuts an address at its last '@'.
func split(addr string) (local, domain string, ok bool) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", "", false
	}
	return addr[:at], addr[at+1:], true
}

// tag reports whether local starts with "SRS0" or "SRS1" (any case) and a
// separator ('=', '+' or '-', as libsrs2 accepts), and returns 0 or 1.
func tag(local string) (int, bool) {
	if len(local) < 5 || !strings.EqualFold(local[:3], "SRS") || strings.IndexByte("=+-", local[4]) < 0 {
		return 0, false
	}
	switch local[3] {
	case '0':
		return 0, true
	case '1':
		return 1, true
	}
	return 0, false
}

// Forward returns the sender to use for mail forwarded from addr: addr
// itself for the null sender and for an address of the relay's own
// domain, and an SRS address of the relay's domain otherwise. An address
// SRS cannot carry (a quoted local part, a domain with '=') is left alone.
func (r *Rewriter) Forward(addr string) string {
	local, domain, ok := split(addr)
	if !ok || strings.EqualFold(strings.TrimSuffix(domain, "."), r.Domain) ||
		strings.ContainsAny(local, "\"\\ ") || strings.ContainsAny(domain, "=\"@ ") {
		return addr
	}
	secret := r.secrets[0]
	if n, ok := tag(local); ok {
		rest := local[4:] // the separator and what follows
		if n == 0 {
			// Guarded: SRS1=HASH=forwarder==HHHH=TT=domain=local.
			return "SRS1=" + hash(secret, domain, rest) + "=" + domain + "=" + rest + "@" + r.Domain
		}
		// SRS1=HASH=forwarder==...: keep the first forwarder, hash again.
		if f := strings.SplitN(rest[1:], "=", 3); len(f) == 3 && f[1] != "" && f[2] != "" {
			host, user := f[1], f[2]
			return "SRS1=" + hash(secret, host, user) + "=" + host + "=" + user + "@" + r.Domain
		}
	}
	ts := stamp(r.now())
	return "SRS0=" + hash(secret, ts, domain, local) + "=" + ts + "=" + domain + "=" + local + "@" + r.Domain
}

// Reverse returns the address that addr, an SRS address of the relay's
// domain, stands for: the original sender for SRS0, the first forwarder's
// SRS0 address for SRS1. ok is false for any other address (not SRS, or
// another domain's); err is set for one of the relay's that does not
// verify (ErrSyntax, ErrHash, ErrExpired).
func (r *Rewriter) Reverse(addr string) (orig string, ok bool, err error) {
	local, domain, found := split(addr)
	if !found || !strings.EqualFold(strings.TrimSuffix(domain, "."), r.Domain) {
		return "", false, nil
	}
	n, isSRS := tag(local)
	if !isSRS {
		return "", false, nil
	}
	f := strings.SplitN(local[5:], "=", 4)
	if n == 0 {
		// HASH=TT=domain=local
		if len(f) != 4 || f[2] == "" || f[3] == "" {
			return "", true, ErrSyntax
		}
		if !r.verify(f[0], f[1], f[2], f[3]) {
			return "", true, ErrHash
		}
		if !r.fresh(f[1]) {
			return "", true, ErrExpired
		}
		return f[3] + "@" + f[2], true, nil
	}
	// HASH=forwarder==HHHH=TT=domain=local: what follows the
	// forwarder's '=' keeps SRS0's separator.
	f = strings.SplitN(local[5:], "=", 3)
	if len(f) != 3 || f[1] == "" || f[2] == "" {
		return "", true, ErrSyntax
	}
	host, user := f[1], f[2]
	if !r.verify(f[0], host, user) {
		return "", true, ErrHash
	}
	return "SRS0" + user + "@" + host, true, nil
}

// Decode returns the original address of a verified SRS address of the
// relay's, and false for any other address: what the enforcer reads as the
// sender's domain.
func (r *Rewriter) Decode(addr string) (orig string, ok bool) {
	orig, mine, err := r.Reverse(addr)
	if !mine || err != nil {
		return "", false
	}
	return orig, true
}
