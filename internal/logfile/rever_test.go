package logfile

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// E-MailRelay's --log-file takes "%d" for the date (YYYYMMDD, local
// time) and "%h" for the hour (HH), and moves to a new file when they
// change: "/var/log/emailrelay-%d" is a log a day. relaykeeper used to
// write to a file named with a literal "%d", for ever.
func TestRevERDatedName(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 6, 23, 59, 59, 0, time.Local)
	l, err := openAt(filepath.Join(dir, "relay-%d-%h.log"), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	io.WriteString(l, "one\n")
	now = now.Add(time.Second)
	io.WriteString(l, "two\n")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(l, "three\n")
	for name, want := range map[string]string{"relay-20261206-23.log": "one\n", "relay-20261207-00.log": "two\nthree\n"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if got, want := l.Path(), filepath.Join(dir, "relay-20261207-00.log"); got != want {
		t.Errorf("Path() = %q; want %q", got, want)
	}
}
