package auth

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
)

// secretsFile is a secrets file kept in force while the relay runs: re-read
// when it changes and on SIGHUP (reload), so that an account removed from
// the file, or a password rotated in it, counts without a restart. A new
// version that does not load is refused whole and the one in force stays.
type secretsFile struct {
	path string
	what string // "server" or "client", for the log
	load func() (*Secrets, error)

	cur atomic.Pointer[Secrets]

	mu   sync.Mutex  // serializes reload
	seen os.FileInfo // the file as last read; guarded by mu
}

func (f *secretsFile) open() error {
	fi, _ := os.Stat(f.path)
	s, err := f.load()
	if err != nil {
		return err
	}
	f.cur.Store(s)
	f.seen = fi
	return nil
}

// reload reads the file again if it changed since it was last read, or
// whatever its state with all (SIGHUP), and puts it in force; log (if not
// nil) says so, or why the old version stays.
func (f *secretsFile) reload(all bool, log *slog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if !all && (err != nil || f.seen != nil && sameVersion(fi, f.seen)) {
		return // gone for now (an editor's rename) or unchanged: keep what is in force
	}
	s, err := f.load()
	if err == nil {
		f.cur.Store(s)
		f.seen = fi
	}
	if log == nil {
		return
	}
	if err != nil {
		log.Error(f.what+" secrets not reloaded; the old ones stay in force", "file", f.path, "err", err)
		return
	}
	log.Info(f.what+" secrets reloaded", "file", f.path)
}

// sameVersion reports whether two stats show the same version of a file.
func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// ServerFile is --server-auth's secrets file as the SMTP server and the
// relay policy use it: its accounts and "server none" lines are re-read
// when the file changes and on SIGHUP (Reload), so that an account removed
// from the file stops logging in without a restart. A new version that
// does not load (a bad line, no server line left) is refused whole and the
// one in force stays. A login already made in a session stays made.
//
// A ServerFile is safe for concurrent use.
type ServerFile struct{ f secretsFile }

// OpenServerFile reads the secrets file at path for the SMTP server;
// domain goes into CRAM-MD5 challenges (Secrets.Domain). A file without
// any server line is refused.
func OpenServerFile(path, domain string, log *slog.Logger) (*ServerFile, error) {
	sf := &ServerFile{secretsFile{path: path, what: "server"}}
	sf.f.load = func() (*Secrets, error) {
		s, err := LoadSecrets(path)
		if err != nil {
			return nil, err
		}
		if !s.HasServer() {
			return nil, fmt.Errorf("%s: no \"server\" lines", path)
		}
		s.Domain = domain
		return s, nil
	}
	if err := sf.f.open(); err != nil {
		return nil, err
	}
	warnReadable(path, log)
	return sf, nil
}

// warnReadable warns on log (if not nil) when the secrets file at path can
// be read by every user of the machine: it holds passwords or their
// equivalents (docs/auth.md: chmod 600).
func warnReadable(path string, log *slog.Logger) {
	fi, err := os.Stat(path)
	if err != nil || log == nil || fi.Mode().Perm()&0o004 == 0 {
		return
	}
	log.Warn("a secrets file is readable by every user of this machine: make it readable by relaykeeper only (chmod 600, docs/auth.md)",
		"file", path, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
}

// Reload reads the file again if it changed since it was last read, or
// whatever its state with all (SIGHUP), and puts it in force; log (if not
// nil) says so, or why the old version stays. A nil *ServerFile does
// nothing.
func (f *ServerFile) Reload(all bool, log *slog.Logger) {
	if f != nil {
		f.f.reload(all, log)
	}
}

// Secrets returns the version in force.
func (f *ServerFile) Secrets() *Secrets { return f.f.cur.Load() }

// HasAccounts is Secrets.HasAccounts of the version in force.
func (f *ServerFile) HasAccounts() bool { return f.Secrets().HasAccounts() }

// Verify is Secrets.Verify of the version in force (POP3's logins).
func (f *ServerFile) Verify(user, pass string) bool { return f.Secrets().Verify(user, pass) }

// APOPSecret is Secrets.APOPSecret of the version in force.
func (f *ServerFile) APOPSecret(user string) (string, bool) { return f.Secrets().APOPSecret(user) }

// EveryoneTrusted is Secrets.EveryoneTrusted of the version in force.
func (f *ServerFile) EveryoneTrusted() string { return f.Secrets().EveryoneTrusted() }

// TrustedNetworks is Secrets.TrustedNetworks of the version in force.
func (f *ServerFile) TrustedNetworks() []netip.Prefix { return f.Secrets().TrustedNetworks() }

// Trusted is Secrets.Trusted of the version in force.
func (f *ServerFile) Trusted(ip netip.Addr) (keyword string, ok bool) {
	return f.Secrets().Trusted(ip)
}
