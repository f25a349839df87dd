package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAud4SpoolDirFromDefaultFile: mailq (sendmail -bp) reads
// /etc/relaykeeper/relaykeeper.toml, the file the systemd unit starts the
// relay with, but "relaykeeper queue" and "relaykeeper bans" without
// --config went to /var/spool/relaykeeper, which tmpfiles.d makes: with the
// spool moved in that file, "relaykeeper queue" said "Mail queue is empty"
// and "queue delete --all" found nothing while mailq listed the queue.
func TestAud4SpoolDirFromDefaultFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "relaykeeper.toml")
	if err := os.WriteFile(file, []byte("[spool]\ndir = \"/srv/relaykeeper\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := DefaultFile
	t.Cleanup(func() { DefaultFile = saved })
	DefaultFile = file
	if got, err := SpoolDir("", ""); err != nil || got != "/srv/relaykeeper" {
		t.Errorf("SpoolDir with neither switch = %q, %v; want /srv/relaykeeper from %s", got, err, file)
	}
	if got, err := SpoolDir("/x", ""); err != nil || got != "/x" {
		t.Errorf("SpoolDir(--spool-dir /x) = %q, %v; want /x", got, err)
	}
	DefaultFile = filepath.Join(dir, "absent.toml")
	if got, err := SpoolDir("", ""); err != nil || got != Default().Spool.Dir {
		t.Errorf("SpoolDir without a default file = %q, %v; want %s", got, err, Default().Spool.Dir)
	}
}
