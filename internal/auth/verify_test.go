package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
)

// TestVerify covers each kind of user. The bcrypt hashes here are at the
// lowest cost, so the dummy is too.
func TestVerify(t *testing.T) {
	s := mustParse(t, strings.Join([]string{
		"server plain alice alicepw",
		"server md5 dave " + MD5State("davepw"),
		"server bcrypt bob " + testHash(t, "bobpw"),
		"server plain long " + strings.Repeat("L", 100),
	}, "\n"))
	tests := []struct {
		user, pass string
		want       bool
	}{
		{"alice", "alicepw", true},
		{"alice", "alicepx", false},
		{"alice", "alicepw\x00", false},
		{"alice", "", false},
		{"Alice", "alicepw", false},
		{"dave", "davepw", true},
		{"dave", "davepx", false},
		{"bob", "bobpw", true},
		{"bob", "bobpx", false},
		{"bob", "", false},
		{"long", strings.Repeat("L", 100), true},
		{"long", strings.Repeat("L", 99), false},
		{"mallory", "alicepw", false},
		{"mallory", "", false},
		{"", "alicepw", false},
	}
	for _, tt := range tests {
		if got := s.Verify(tt.user, tt.pass); got != tt.want {
			t.Errorf("Verify(%q, %q) = %v; want %v", tt.user, tt.pass, got, tt.want)
		}
	}
}

// TestVerifyDummyCompare checks the timing design by structure: every Verify
// makes exactly one bcrypt comparison when the file has bcrypt lines, of the
// user's own hash or of a dummy at the file's highest cost, and none when it
// has not.
func TestVerifyDummyCompare(t *testing.T) {
	h4 := testHash(t, "bobpw")
	h5, err := bcrypt.GenerateFromPassword([]byte("carolpw"), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t, "server plain alice alicepw\nserver bcrypt bob "+h4+"\nserver bcrypt carol "+string(h5))
	if cost, err := bcrypt.Cost(s.dummyHash); err != nil || cost != bcrypt.MinCost+1 {
		t.Fatalf("dummy hash cost = %d, %v; want %d", cost, err, bcrypt.MinCost+1)
	}
	// The dummy is a well-formed hash that really costs its cost: comparing
	// against it fails as a mismatch, not as a malformed hash.
	if err := bcrypt.CompareHashAndPassword(s.dummyHash, []byte("x")); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		t.Fatalf("comparing with the dummy: %v; want a mismatch", err)
	}

	var compared []string
	real := s.compareHash
	s.compareHash = func(hash, pw []byte) error {
		switch string(hash) {
		case string(s.dummyHash):
			compared = append(compared, "dummy")
		default:
			compared = append(compared, "own")
		}
		return real(hash, pw)
	}
	tests := []struct {
		user, pass string
		want       []string
	}{
		{"mallory", "x", []string{"dummy"}},
		{"alice", "wrong", []string{"dummy"}},
		{"alice", "alicepw", []string{"dummy"}},
		{"bob", "wrong", []string{"own"}},
		{"bob", "bobpw", []string{"own"}},
		{"carol", "", []string{"own"}},
	}
	for _, tt := range tests {
		compared = nil
		s.Verify(tt.user, tt.pass)
		if diff := cmp.Diff(tt.want, compared); diff != "" {
			t.Errorf("Verify(%q, %q) bcrypt comparisons (-want +got):\n%s", tt.user, tt.pass, diff)
		}
	}

	plainOnly := mustParse(t, "server plain alice alicepw")
	plainOnly.compareHash = func(hash, pw []byte) error {
		t.Errorf("bcrypt comparison in a file without bcrypt lines")
		return nil
	}
	plainOnly.Verify("mallory", "x")
	plainOnly.Verify("alice", "alicepw")
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost([]byte(h)); cost < 10 {
		t.Errorf("cost = %d; want 10 or more", cost)
	}
	s := mustParse(t, "server bcrypt u "+h)
	if !s.Verify("u", "correct horse") || s.Verify("u", "correct horsE") {
		t.Error("a hash from HashPassword does not verify its password alone")
	}
	for _, pw := range []string{"", strings.Repeat("x", 73)} {
		if _, err := HashPassword(pw); err == nil {
			t.Errorf("HashPassword(%d bytes) succeeded", len(pw))
		}
	}
}
