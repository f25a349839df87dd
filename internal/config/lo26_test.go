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

// TestLo26AnonymousScopes: E-MailRelay's --anonymous=vrfy,server,client
// asks for what relaykeeper always does (VRFY answers 252, a greeting
// without the software's name, no AUTH= on outbound MAIL), yet every
// --anonymous was refused, stopping the start of an E-MailRelay command
// line or configuration file that had it. Those scopes are now taken; the
// content scope, and a bare --anonymous, which leave the Received header
// out, are still refused, saying why.
func TestLo26AnonymousScopes(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		want string // in the error; "" for none
	}{
		{"--anonymous=vrfy,server,client", ""},
		{"--anonymous=server", ""},
		{"-A", "Received header"},
		{"--anonymous", "Received header"},
		{"--anonymous=vrfy,content", "Received header"},
		{"--anonymous=vfry", "unknown scope"},
	} {
		_, err := ParseSwitches([]string{"--as-server", tc.arg})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("ParseSwitches(%s) = %v; want an error saying %q", tc.arg, err, tc.want)
		}
	}
	path := filepath.Join(t.TempDir(), "emailrelay.conf")
	os.WriteFile(path, []byte("as-server\nanonymous vrfy,server\n"), 0o644)
	if _, _, err := switchFileArgs(path); err != nil {
		t.Errorf("switchFileArgs(anonymous vrfy,server) = %v; want it taken", err)
	}
}
