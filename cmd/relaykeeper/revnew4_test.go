package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRevNew4FileErrorsNamePlace: a certificate, a secrets file or a
// filter program that cannot be opened is reported with where it was set:
// the TOML file and line and key, the switch, or the line of E-MailRelay's
// configuration file. A missing certificate said only "certreload: TLS
// certificate ...", naming an internal package and neither the key nor the
// line; a filter set in the TOML file was blamed on "--filter"; a line of
// /etc/emailrelay.conf was reported as a switch nobody typed.
func TestRevNew4FileErrorsNamePlace(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	missing := filepath.Join(dir, "missing")
	base := []string{"--as-server", "--spool-dir", spool, "--port", "1"}
	for i, tt := range []struct {
		name string
		toml string   // a TOML configuration file's text, or
		conf string   // the lines of E-MailRelay's after its first three, or
		args []string // switches after base
		want string   // after the file's name, if any
	}{
		{name: "toml certificate", toml: "[tls]\nserver = true\ncertificate = \"" + missing + "\"\n",
			want: ":3: tls.certificate: TLS certificate " + missing},
		{name: "switch certificate", args: []string{"--server-tls", "--server-tls-certificate", missing},
			want: "relaykeeper: --server-tls-certificate: TLS certificate " + missing},
		{name: "conf certificate", conf: "server-tls\nserver-tls-certificate " + missing + "\n",
			want: ":5: --server-tls-certificate: TLS certificate " + missing},
		{name: "toml filter", toml: "[filter]\nserver = [\"" + missing + "\"]\n", want: ":2: filter.server: "},
		{name: "switch filter", args: []string{"--filter", missing}, want: "relaykeeper: --filter: "},
		{name: "conf filter", conf: "filter " + missing + "\n", want: ":4: --filter: "},
		{name: "conf client filter", conf: "client-filter " + missing + "\n", want: ":4: --client-filter: "},
		{name: "toml server secrets", toml: "[auth]\nserver_secrets = \"" + missing + "\"\n", want: ":2: auth.server_secrets: "},
		{name: "conf server secrets", conf: "server-auth " + missing + "\n", want: ":4: --server-auth: "},
		{name: "conf client secrets", conf: "forward-to 127.0.0.1:25\nclient-auth " + missing + "\n", want: ":5: --client-auth: "},
		{name: "conf pop secrets", conf: "pop\npop-port 1\npop-auth " + missing + "\n", want: ":6: --pop-auth: "},
		{name: "conf validate", conf: "server-tls\n", want: ":4: --server-tls: TLS for clients needs a certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args, want := append(base, tt.args...), tt.want
			if tt.toml != "" || tt.conf != "" {
				f := filepath.Join(dir, fmt.Sprintf("%d.conf", i))
				text := "as-server\nspool-dir " + spool + "\nport 1\n" + tt.conf
				if args = []string{f}; tt.toml != "" {
					text, args = tt.toml, append([]string{"--config", f}, base...)
				}
				if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				want = "relaykeeper: " + f + want
			}
			var out, errs bytes.Buffer
			if status := run(args, &out, &errs); status != exitUsage {
				t.Errorf("status %d; want %d (stderr %q)", status, exitUsage, errs.String())
			}
			if got := errs.String(); !strings.HasPrefix(got, want) || strings.Contains(got, "certreload") {
				t.Errorf("stderr = %q; want it to start %q", got, want)
			}
		})
	}
}
