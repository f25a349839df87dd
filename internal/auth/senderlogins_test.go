package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const senderTable = `# smtpd_sender_login_maps
alice@example.com     alice, alice2
@example.org          bob
Sales@Example.com     carol,
    dave
	erin
bounce+x@example.com  frank

`

func TestSenderLogins(t *testing.T) {
	tl, err := parseSenderLogins("logins", strings.NewReader(senderTable))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		login, sender string
		want          bool
	}{
		{"alice", "alice@example.com", true},
		{"ALICE2", "Alice@EXAMPLE.com", true},
		{"bob", "alice@example.com", false},
		{"alice", "alice+lists@example.com", true},
		{"bob", "anyone@example.org", true},
		{"bob", "anyone@sub.example.org", false},
		{"carol", "sales@example.com", true},
		{"dave", "sales@example.com", true},
		{"erin", "sales@example.com", true},
		{"frank", "bounce+x@example.com", true},
		{"frank", "bounce@example.com", false},
		{"alice", "nobody@example.net", false},
		{"alice", "postmaster", false},
		{"", "alice@example.com", false},
		{"", "", true},
		{"alice", "", true},
	}
	for _, tt := range tests {
		if got := tl.Owns(tt.login, tt.sender); got != tt.want {
			t.Errorf("Owns(%q, %q) = %v; want %v", tt.login, tt.sender, got, tt.want)
		}
	}
	owners, ok := tl.Owners("sales@example.com")
	if diff := cmp.Diff([]string{"carol", "dave", "erin"}, owners); diff != "" || !ok {
		t.Errorf("Owners(sales@example.com) = %v (-want +got):\n%s", ok, diff)
	}
	if owners, ok := tl.Owners("x@example.net"); owners != nil || ok {
		t.Errorf("Owners(x@example.net) = %v, %v; want nil, false", owners, ok)
	}
}

func TestSenderLoginsErrors(t *testing.T) {
	text := strings.Join([]string{
		"  orphan",             // 1
		"alice@example.com",    // 2
		"bob bob",              // 3
		"@ carol",              // 4
		"dave@ dave",           // 5
		"a@example.com a",      // 6
		"# comment",            // 7
		"A@Example.com b",      // 8
		"c@example.com ,",      // 9
		"d@example.com d",      // 10
		"   d2,",               // 11
		"e@example.com\te1,e2", // 12
	}, "\n")
	_, err := parseSenderLogins("logins", strings.NewReader(text))
	want := strings.Join([]string{
		"logins:1: continuation line (it starts with a blank) without a line to continue",
		`logins:2: key "alice@example.com" has no login`,
		`logins:3: key "bob" is a bare user: write user@domain or @domain`,
		`logins:4: key "@" has no domain`,
		`logins:5: key "dave@" has no domain`,
		`logins:8: duplicate key "a@example.com" (first on line 6)`,
		`logins:9: key "c@example.com" has no login`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("parseSenderLogins error =\n%v\nwant\n%s", err, want)
	}
}

func TestLoadSenderLogins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sender_logins")
	if err := os.WriteFile(path, []byte("a@example.com a\ne@example.com\te1,e2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tl, err := LoadSenderLogins(path)
	if err != nil {
		t.Fatal(err)
	}
	if !tl.Owns("e2", "e@example.com") || !tl.Owns("a", "a@example.com") {
		t.Error("loaded table misses an owner")
	}
	if _, err := LoadSenderLogins(path + ".missing"); err == nil {
		t.Error("LoadSenderLogins of a missing file succeeded")
	}
}

// TestRevTabSenderLoginsTrailingDot: alice@example.com. is the mailbox
// alice@example.com, so it has the same owners. Looked up as written it
// had none, and a client that had not logged in could send as
// MAIL FROM:<alice@example.com.> past reject_sender_login_mismatch.
func TestRevTabSenderLoginsTrailingDot(t *testing.T) {
	tl, err := parseSenderLogins("logins", strings.NewReader(senderTable))
	if err != nil {
		t.Fatal(err)
	}
	for sender, want := range map[string][]string{
		"alice@example.com.":   {"alice", "alice2"},
		"ALICE@EXAMPLE.COM.":   {"alice", "alice2"},
		"anyone@example.org.":  {"bob"},
		"alice+x@example.com.": {"alice", "alice2"},
		"nobody@example.net.":  nil,
	} {
		owners, ok := tl.Owners(sender)
		if diff := cmp.Diff(want, owners); diff != "" || ok != (want != nil) {
			t.Errorf("Owners(%q) = %v, %v; want %v", sender, owners, ok, want)
		}
	}
	if tl.Owns("bob", "alice@example.com.") || !tl.Owns("alice", "alice@example.com.") {
		t.Errorf("Owns(bob|alice, alice@example.com.) = %v|%v; want false|true", tl.Owns("bob", "alice@example.com."), tl.Owns("alice", "alice@example.com."))
	}
}
