package config

import (
	"strings"
	"testing"
	"time"
)

// Started in a terminal, the relay says where to look, the mail log among
// them (docs/operations.md). With a dated name, as operations.md suggests
// ("relaykeeper-%d"), it printed the name as written,
// "/var/log/relaykeeper/mail-%d.log", a file that never exists: "tail -f"
// on it found nothing. It prints today's file.
func TestOps24WhereToLookNamesTodaysMailLog(t *testing.T) {
	for _, set := range []func(c *Config){
		func(c *Config) { c.Log.MailLog = "/var/log/relaykeeper/mail-%d.log" },
		func(c *Config) { c.Log.File = "/var/log/relaykeeper/mail-%d.log" },
	} {
		c := Default()
		set(&c)
		var b strings.Builder
		c.WriteWhereToLook(&b, Running{Version: "1.0", Mode: "store", Spool: "/var/spool/relaykeeper"})
		want := "  mail log   /var/log/relaykeeper/mail-" + time.Now().Format("20060102") + ".log\n"
		if !strings.Contains(b.String(), want) {
			t.Errorf("WriteWhereToLook wrote\n%s\nwithout %q", b.String(), want)
		}
	}
}
