package filter

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

func TestMsgID(t *testing.T) {
	const id = "Message-ID: <20261122030000.X@relay.example>\r\n"
	tests := []struct {
		name, in, want string // want "" means unchanged
	}{
		{"missing", testContent, strings.Replace(testContent, "Subject: hello\r\n", "Subject: hello\r\n"+id, 1)},
		{"present", "Message-ID: <a@b>\r\nSubject: x\r\n\r\nbody\r\n", ""},
		{"present-other-case", "Subject: x\r\nmessage-id : <a@b>\r\n\r\nbody\r\n", ""},
		{"present-folded", "Subject: x\r\nMessage-Id:\r\n <a@b>\r\n\r\nbody\r\n", ""},
		{"only-resent", "Resent-Message-ID: <a@b>\r\n\r\nbody\r\n", "Resent-Message-ID: <a@b>\r\n" + id + "\r\nbody\r\n"},
		{"in-body-only", "Subject: x\r\n\r\nMessage-ID: <a@b>\r\n", "Subject: x\r\n" + id + "\r\nMessage-ID: <a@b>\r\n"},
		{"folded-last", "Subject: a\r\n long\r\n\r\nbody\r\n", "Subject: a\r\n long\r\n" + id + "\r\nbody\r\n"},
		{"no-separator", "Subject: x\r\nThis is not a header\r\n", "Subject: x\r\n" + id + "This is not a header\r\n"},
		{"headers-only", "Subject: x\r\n", "Subject: x\r\n" + id},
		{"no-final-newline", "Subject: x", "Subject: x\r\n" + id},
		{"empty", "", id},
		{"no-header", "\r\nbody\r\n", id + "\r\nbody\r\n"},
		{"long-line", "X-Long: " + strings.Repeat("a", 40000) + "\r\n\r\nb\r\n",
			"X-Long: " + strings.Repeat("a", 40000) + "\r\n" + id + "\r\nb\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := newMsgID("msgid:relay.example", "relay.example")
			if err != nil {
				t.Fatal(err)
			}
			f.now = func() time.Time { return time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC) }
			c, e := message(t, tt.in)
			before := inode(t, c)
			if r := f.Run(context.Background(), c, e); r.Outcome != OK {
				t.Fatalf("Run = %v; want ok", r)
			}
			got := readFile(t, c)
			// The random part differs every time.
			if i := strings.Index(got, "Message-ID: <20261122030000."); i >= 0 {
				if j := strings.Index(got[i:], "@"); j > 0 {
					got = got[:i] + "Message-ID: <20261122030000.X" + got[i+j:]
				}
			}
			want := tt.want
			if want == "" {
				want = tt.in
				if inode(t, c) != before {
					t.Errorf("content file replaced although it had a Message-ID")
				}
			}
			if got != want {
				t.Errorf("content =\n%q\nwant\n%q", got, want)
			}
			if fi, err := os.Stat(c); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("content mode = %v, %v; want 0640", fi.Mode(), err)
			}
			if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(c), "*.tmp")); len(tmps) > 0 {
				t.Errorf("temporary files left: %v", tmps)
			}
		})
	}
}

func TestMsgIDDefaultDomain(t *testing.T) {
	f := mustParse(t, "msgid:", Server, 0)
	c, e := message(t, testContent)
	if r := f.Run(context.Background(), c, e); r.Outcome != OK {
		t.Fatalf("Run = %v", r)
	}
	host, _ := os.Hostname()
	if got := readFile(t, c); !strings.Contains(got, "@"+host+">\r\n") {
		t.Errorf("content = %q; want a Message-ID at %s", got, host)
	}
}

func TestMsgIDMissingFile(t *testing.T) {
	f := mustParse(t, "msgid:", Server, 0)
	if r := f.Run(context.Background(), "/nonexistent/x.content", "/nonexistent/x.envelope"); r.Outcome != TempFail {
		t.Errorf("Run on a missing file = %v; want tempfail", r)
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestReplaceContentFailureKeepsOld(t *testing.T) {
	c, _ := message(t, testContent)
	err := safefile.Replace(c, safefile.Options{}, func(w io.Writer) error {
		io.WriteString(w, "half a message")
		return errors.New("boom")
	})
	if err == nil {
		t.Fatal("replaceContent with a failing fill: no error")
	}
	if got := readFile(t, c); got != testContent {
		t.Errorf("content after a failed replace = %q; want the old content", got)
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(c), "*.tmp")); len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}
