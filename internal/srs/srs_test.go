package srs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The known answers are postsrsd 1.10's (Debian's package), run with the
// secret file "relaykeeper-test-secret\n", -d relay.example, on this day.
var postsrsdDay = time.Unix(1796435493, 0)

func newTest(t *testing.T, now time.Time) *Rewriter {
	t.Helper()
	r, err := New("relay.example", []string{"relaykeeper-test-secret"})
	if err != nil {
		t.Fatal(err)
	}
	r.Clock = func() time.Time { return now }
	return r
}

func TestForwardPostsrsd(t *testing.T) {
	r := newTest(t, postsrsdDay)
	for _, tt := range []struct{ in, want string }{
		{"alice@example.com", "SRS0=EShB=JY=example.com=alice@relay.example"},
		{"Bob.Smith@Example.ORG", "SRS0=SADR=JY=Example.ORG=Bob.Smith@relay.example"},
		{"SRS0=abcd=XY=gmail.com=bob@attacker.example", "SRS1=B8Z4=attacker.example==abcd=XY=gmail.com=bob@relay.example"},
		{"SRS1=XXXX=fwd.example==HHHH=TT=example.com=alice@other.example", "SRS1=JOw5=fwd.example==HHHH=TT=example.com=alice@relay.example"},
		{"x@relay.example", "x@relay.example"},
		{"x@RELAY.example.", "x@RELAY.example."},
		{"", ""},
	} {
		if got := r.Forward(tt.in); got != tt.want {
			t.Errorf("Forward(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestReverse(t *testing.T) {
	r := newTest(t, postsrsdDay)
	for _, tt := range []struct {
		in, want string
		mine     bool
		err      error
	}{
		{"SRS0=EShB=JY=example.com=alice@relay.example", "alice@example.com", true, nil},
		// Mailers may change the case; libsrs2 compares hashes without it.
		{"srs0=eshb=jy=example.com=alice@RELAY.EXAMPLE", "alice@example.com", true, nil},
		{"SRS1=B8Z4=attacker.example==abcd=XY=gmail.com=bob@relay.example", "SRS0=abcd=XY=gmail.com=bob@attacker.example", true, nil},
		// Anyone can write these: the hash does not verify.
		{"SRS0=abcd=JY=gmail.com=bob@relay.example", "", true, ErrHash},
		{"SRS1=abcd=gmail.com==x=JY=gmail.com=bob@relay.example", "", true, ErrHash},
		{"SRS0=EShB=JY=example.com@relay.example", "", true, ErrSyntax},
		// Another domain's SRS address, and plain addresses, are not ours.
		{"SRS0=abcd=XY=gmail.com=bob@attacker.example", "", false, nil},
		{"alice@relay.example", "", false, nil},
		{"SRSX=a=b=c=d@relay.example", "", false, nil},
		{"", "", false, nil},
	} {
		got, mine, err := r.Reverse(tt.in)
		if got != tt.want || mine != tt.mine || !errors.Is(err, tt.err) {
			t.Errorf("Reverse(%q) = %q, %v, %v; want %q, %v, %v", tt.in, got, mine, err, tt.want, tt.mine, tt.err)
		}
	}
}

func TestReverseExpiry(t *testing.T) {
	addr := newTest(t, postsrsdDay).Forward("alice@example.com")
	for _, tt := range []struct {
		after time.Duration
		err   error
	}{
		{0, nil},
		{21 * day, nil},
		{22 * day, ErrExpired},
		// The stamp wraps every 1024 days; a stamp "from the future" is
		// one from 1024 days ago.
		{-day, ErrExpired},
	} {
		r := newTest(t, postsrsdDay.Add(tt.after))
		if _, _, err := r.Reverse(addr); !errors.Is(err, tt.err) {
			t.Errorf("Reverse(%q) %v later: %v; want %v", addr, tt.after, err, tt.err)
		}
	}
}

func TestSecrets(t *testing.T) {
	// A new secret signs; the old one still verifies what it signed.
	old := newTest(t, postsrsdDay)
	path := filepath.Join(t.TempDir(), "srs.secret")
	if err := os.WriteFile(path, []byte("new-secret\n\nrelaykeeper-test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets, err := LoadSecrets(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New("relay.example", secrets)
	if err != nil {
		t.Fatal(err)
	}
	r.Clock = old.Clock
	if got := r.Forward("alice@example.com"); got == old.Forward("alice@example.com") {
		t.Errorf("Forward with a new first secret = %q, the old secret's address", got)
	}
	if got, ok := r.Decode("SRS0=EShB=JY=example.com=alice@relay.example"); !ok || got != "alice@example.com" {
		t.Errorf("Decode with the old secret second = %q, %v; want alice@example.com", got, ok)
	}
	if _, err := New("relay.example", nil); err == nil {
		t.Error("New without a secret: no error")
	}
	if err := os.WriteFile(path, []byte("\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecrets(path); err == nil {
		t.Error("LoadSecrets of an empty file: no error")
	}
}

func FuzzReverse(f *testing.F) {
	r, _ := New("relay.example", []string{"relaykeeper-test-secret"})
	r.Clock = func() time.Time { return postsrsdDay }
	for _, s := range []string{
		"SRS0=EShB=JY=example.com=alice@relay.example",
		"SRS1=B8Z4=attacker.example==abcd=XY=gmail.com=bob@relay.example",
		"SRS0=abcd=XY=gmail.com=bob@attacker.example",
		"alice@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		orig, mine, err := r.Reverse(addr)
		if err == nil && mine {
			// Only what the relay wrote verifies: writing it again
			// gives an address that reads back the same.
			if again, ok := r.Decode(r.Forward(orig)); !ok || again != orig {
				t.Errorf("Reverse(%q) = %q, but Decode(Forward(%q)) = %q, %v", addr, orig, orig, again, ok)
			}
		}
		if (orig != "") != (mine && err == nil) {
			t.Errorf("Reverse(%q) = %q, %v, %v", addr, orig, mine, err)
		}
		// Forward never fails and its result reads back, unless it is
		// left alone.
		fw := r.Forward(addr)
		if fw != addr {
			if back, ok := r.Decode(fw); !ok || (back != addr && !isSRS(addr)) {
				t.Errorf("Decode(Forward(%q) = %q) = %q, %v", addr, fw, back, ok)
			}
		}
	})
}

func isSRS(addr string) bool {
	local, _, _ := split(addr)
	_, ok := tag(local)
	return ok
}
