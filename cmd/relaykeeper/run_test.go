package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
)

// TestRunWritesToInjectedWriters pins that the relay's own words reach the
// writers run was given, not the process's standard streams.
func TestRunWritesToInjectedWriters(t *testing.T) {
	t.Run("as-client summary", func(t *testing.T) {
		var out, errs bytes.Buffer
		status := run([]string{"--as-client", "127.0.0.1:1", "--spool-dir", t.TempDir()}, &out, &errs)
		if status != exitOK {
			t.Errorf("run(--as-client) = %d; want %d (stderr %q)", status, exitOK, errs.String())
		}
		if got, want := out.String(), "relaykeeper: 0 message(s)"; !strings.HasPrefix(got, want) {
			t.Errorf("stdout = %q; want it to start with %q", got, want)
		}
	})
	t.Run("listen failure", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var out, errs bytes.Buffer
		status := run([]string{"--as-server", "--interface", l.Addr().String(), "--spool-dir", t.TempDir()}, &out, &errs)
		if status != exitUsage {
			t.Errorf("run(--as-server on a taken port) = %d; want %d", status, exitUsage)
		}
		if got, want := errs.String(), "cannot listen on "+l.Addr().String(); !strings.Contains(got, want) {
			t.Errorf("stderr = %q; want it to contain %q", got, want)
		}
	})
}

// The listener roles config reads from --interface are the ones smtpd
// serves.
func TestRolesAgree(t *testing.T) {
	for _, r := range [][2]string{
		{config.RoleSMTP, smtpd.RoleSMTP}, {config.RoleSubmission, smtpd.RoleSubmission},
		{config.RoleSMTPS, smtpd.RoleSMTPS}, {config.RoleReinject, smtpd.RoleReinject},
	} {
		if r[0] != r[1] {
			t.Errorf("config role %q != smtpd role %q", r[0], r[1])
		}
	}
}
