package config

import (
	"strings"
	"testing"
)

// FuzzParseSwitches: any E-MailRelay command line (one argument a line)
// gives a configuration that has passed Validate, or an error; never a
// panic. ParseDuration, which reads every duration switch and key, gives
// a duration or an error too, and a number of seconds is that many
// seconds.
func FuzzParseSwitches(f *testing.F) {
	for _, s := range []string{
		"--as-server\n--spool-dir\n/tmp/x", "--as-proxy\nsmarthost:25\n--port\n2525", "-d\n-r\n-o\nsmarthost:25",
		"--forward-to\n[::1]:25\n--forward-on-disconnect", "--port\n-1", "--port\n99999", "--idle-timeout\n1e9",
		"--poll\n-5", "--interface\nsmtp=127.0.0.1,admin=\n--admin\n1", "--filter\nexit:103,,msgid:", "--dnsbl\n,,,",
		"--as-client\n--as-server", "--size\n18446744073709551616", "--response-timeout=5m\n--connection-timeout=", "--syslog=mail",
		"--address-verifier\nnet:127.0.0.1:1", "--client-auth\nplain:a:b", "--", "-", "--log-format=x",
	} {
		f.Add(s, "90s")
	}
	f.Fuzz(func(t *testing.T, line, dur string) {
		if d, err := ParseDuration(dur); err == nil && strings.Trim(strings.TrimSpace(dur), "0123456789") == "" && d%1e9 != 0 {
			t.Fatalf("ParseDuration(%q) = %v: not whole seconds", dur, d)
		}
		args := strings.Split(line, "\n")
		for _, a := range args {
			if strings.Contains(a, "config") || strings.Contains(a, "switch") || strings.HasPrefix(a, "@") {
				return // reads a file
			}
		}
		cl, err := ParseSwitches(args)
		if err != nil || cl.ConfigFile != "" {
			return
		}
		cl.Config()
	})
}
