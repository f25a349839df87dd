package postfixlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFindInMbox(t *testing.T) {
	first := "From: a@example.com\nMessage-ID: <one@example.com>\nSubject: first\n\nbody\n>From the start\n"
	second := "From: b@example.com\nMessage-ID:\n <Two@Example.com>\n\nline\n\n>>From quoted twice\nFrom not a separator\n"
	resent := "From: a@example.com\nMessage-ID: <one@example.com>\nSubject: resent\n\nnewer\n"
	mbox := "From a@example.com  Sun Nov 22 10:00:00 2026\n" + first + "\n" +
		"From b@example.com  Sun Nov 22 10:00:01 2026\nReturn-Path: <b@example.com>\nX-Original-To: backup@localhost\nDelivered-To: backup@localhost\n" +
		second[:len(second)-len(">>From quoted twice\nFrom not a separator\n")] + ">>>From quoted twice\n>From not a separator\n\n" +
		"From a@example.com  Sun Nov 22 10:00:02 2026\n" + resent + "\n"
	path := filepath.Join(t.TempDir(), "backup")
	if err := os.WriteFile(path, []byte(mbox), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ id, want string }{
		{"<two@example.com>", second},
		{"one@example.com", resent}, // the last one
	}
	for _, tt := range tests {
		got, err := FindInMbox(path, tt.id)
		if err != nil || string(got) != tt.want {
			t.Errorf("FindInMbox(%q) = %q, %v; want %q", tt.id, got, err, tt.want)
		}
	}
	if _, err := FindInMbox(path, "<three@example.com>"); !errors.Is(err, ErrNotInMbox) {
		t.Errorf("FindInMbox(absent) = %v; want ErrNotInMbox", err)
	}
}
