package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLo26SwitchFileUTF16: E-MailRelay's configuration file saved as
// UTF-16 (Notepad's "Unicode", starting FF FE) was refused with
// "unknown switch --\xff\xfep\x00o\x00r\x00t\x00", NUL bytes and half a
// byte-order mark on the terminal. It is now refused saying what the file
// is and what to do.
func TestLo26SwitchFileUTF16(t *testing.T) {
	for name, data := range map[string][]byte{
		"le":  append([]byte{0xff, 0xfe}, utf16le("port 2525\nas-server\n")...),
		"be":  append([]byte{0xfe, 0xff}, utf16be("port 2525\n")...),
		"nul": []byte("port 2525\nas-server\x00\n"),
	} {
		path := filepath.Join(t.TempDir(), "emailrelay.conf")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := switchFileArgs(path)
		if err == nil || !strings.Contains(err.Error(), "save it as UTF-8") || strings.ContainsRune(err.Error(), 0) {
			t.Errorf("%s: switchFileArgs = %v; want an error saying to save it as UTF-8", name, err)
		}
	}
	// UTF-8 with a byte-order mark is still read.
	path := filepath.Join(t.TempDir(), "emailrelay.conf")
	os.WriteFile(path, []byte("\ufeffport 2525\n"), 0o644)
	if args, _, err := switchFileArgs(path); err != nil || len(args) != 1 {
		t.Errorf("switchFileArgs(UTF-8 with a BOM) = %v, %v; want one switch", args, err)
	}
}

func utf16le(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), 0)
	}
	return b
}

func utf16be(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, 0, byte(r))
	}
	return b
}
