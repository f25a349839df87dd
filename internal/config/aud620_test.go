package config

import (
	"os"
	"path/filepath"
	"testing"
)

// --pop without --pop-auth reads relaykeeper's own secrets file, or, where
// there is none, E-MailRelay's /etc/emailrelay.auth: the default the user
// guide's "emailrelay --pop --no-smtp --log --close-stderr" relies on, on a
// machine set up for E-MailRelay. relaykeeper looked only for its own file.
func TestAud620POPAuthDefault(t *testing.T) {
	dir := t.TempDir()
	own, theirs := filepath.Join(dir, "relaykeeper.auth"), filepath.Join(dir, "emailrelay.auth")
	candidates := []string{own, theirs}
	if got := popAuthDefault(candidates); got != own {
		t.Errorf("with neither file: %q; want %q (named in the error)", got, own)
	}
	os.WriteFile(theirs, []byte("server plain alice s3cret\n"), 0o600)
	if got := popAuthDefault(candidates); got != theirs {
		t.Errorf("with only E-MailRelay's: %q; want %q", got, theirs)
	}
	os.WriteFile(own, []byte("server plain alice s3cret\n"), 0o600)
	if got := popAuthDefault(candidates); got != own {
		t.Errorf("with both: %q; want %q", got, own)
	}
	if got, want := POPAuthDefault(), "/etc/relaykeeper.auth"; got != want {
		if _, err := os.Stat(want); err == nil {
			t.Errorf("POPAuthDefault() = %q; want %q, which exists", got, want)
		} else if got != "/etc/emailrelay.auth" {
			t.Errorf("POPAuthDefault() = %q; want %q or /etc/emailrelay.auth", got, want)
		}
	}
}
