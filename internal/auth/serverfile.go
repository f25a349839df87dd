package auth

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
)

// ServerFile is --server-auth's secrets file as the SMTP server and the
// relay policy use it: its accounts and "server none" lines are re-read
// when the file changes and on SIGHUP (Reload), so that an account removed
// from the file stops logging in without a restart. A new version that
// does not load (a bad line, no server line left) is refused whole and the
// one in force stays. A login already made in a session stays made.
//
// A ServerFile is safe for concurrent use.
type ServerFile struct {
	path, domain string

	cur atomic.Pointer[Secrets]

	mu   sync.Mutex  // serializes Reload
	seen os.FileInfo // the file as last read; guarded by mu
}

// OpenServerFile reads the secrets file at path for the SMTP server;
// domain goes into CRAM-MD5 challenges (Secrets.Domain). A file without
// any server line is refused.
func OpenServerFile(path, domain string) (*ServerFile, error) {
	f := &ServerFile{path: path, domain: domain}
	fi, _ := os.Stat(path)
	s, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur.Store(s)
	f.seen = fi
	return f, nil
}

func (f *ServerFile) load() (*Secrets, error) {
	s, err := LoadSecrets(f.path)
	if err != nil {
		return nil, err
	}
	if !s.HasServer() {
		return nil, fmt.Errorf("%s: no \"server\" lines", f.path)
	}
	s.Domain = f.domain
	return s, nil
}

// Reload reads the file again if it changed since it was last read, or
// whatever its state with all (SIGHUP), and puts it in force; log (if not
// nil) says so, or why the old version stays. A nil *ServerFile does
// nothing.
func (f *ServerFile) Reload(all bool, log *slog.Logger) {
	if f == nil {
		return
	}
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
		log.Error("server secrets not reloaded; the old ones stay in force", "file", f.path, "err", err)
		return
	}
	log.Info("server secrets reloaded", "file", f.path)
}

// sameVersion reports whether two stats show the same version of a file.
func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// Secrets returns the version in force.
func (f *ServerFile) Secrets() *Secrets { return f.cur.Load() }

// HasAccounts is Secrets.HasAccounts of the version in force.
func (f *ServerFile) HasAccounts() bool { return f.Secrets().HasAccounts() }

// Verify is Secrets.Verify of the version in force (POP3's logins).
func (f *ServerFile) Verify(user, pass string) bool { return f.Secrets().Verify(user, pass) }

// APOPSecret is Secrets.APOPSecret of the version in force.
func (f *ServerFile) APOPSecret(user string) (string, bool) { return f.Secrets().APOPSecret(user) }

// Trusted is Secrets.Trusted of the version in force.
func (f *ServerFile) Trusted(ip netip.Addr) (keyword string, ok bool) {
	return f.Secrets().Trusted(ip)
}
