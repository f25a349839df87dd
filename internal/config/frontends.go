package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/pidfile"
)

// Unqualified is the key of OtherInterfaces for the --interface entries
// that have no prefix: E-MailRelay listens there with every server.
const Unqualified = "*"

// FrontendAddrs are the listen addresses of the POP3 ("pop") or admin
// ("admin") server on port: its own --interface entries (pop=ADDR,
// admin=ADDR) and the hosts of the entries without a prefix, since
// E-MailRelay applies an unqualified --interface to all its servers
// beside their own entries (an smtp= entry is SMTP's alone); the admin
// port's own entries alone when it has some (never a public address the
// operator kept it off). An own entry
// with a port (pop=ADDR:PORT, relaykeeper's form, not E-MailRelay's) says
// where that server listens, alone. Without any, the hosts of the SMTP
// entries if they are the configuration file's (not --interface's, whose
// smtp= entries are SMTP's alone); else def ("" for every address).
func (c *Config) FrontendAddrs(listener, def string, port int) []string {
	entries := slices.Clone(c.OtherInterfaces[listener])
	add := func(a string) {
		if h, _, err := net.SplitHostPort(a); err == nil {
			a = h
		}
		if !slices.Contains(entries, a) {
			entries = append(entries, a)
		}
	}
	hasPort := func(a string) bool { _, _, err := net.SplitHostPort(a); return err == nil }
	// The admin port's own entries stay the only ones, as docs/admin.md
	// has always promised ("admin=ADDR: on ADDR instead"): a relay open
	// to the world (--interface 0.0.0.0) keeps its admin port on
	// loopback with admin=127.0.0.1, where E-MailRelay would add 0.0.0.0.
	if !slices.ContainsFunc(entries, hasPort) && (listener != "admin" || len(entries) == 0) {
		for _, a := range c.OtherInterfaces[Unqualified] {
			add(a)
		}
	}
	if _, switched := c.OtherInterfaces[Unqualified]; len(entries) == 0 && !switched {
		for _, e := range c.SMTP.Interfaces {
			if role, a := SplitRole(e); role == RoleSMTP {
				add(a)
			}
		}
	}
	if len(entries) == 0 {
		entries = []string{def}
	}
	var out []string
	for _, e := range entries {
		if _, _, err := net.SplitHostPort(e); err != nil {
			e = net.JoinHostPort(strings.Trim(e, "[]"), strconv.Itoa(port))
		}
		for _, a := range interfaceAddrs(e) {
			if !slices.Contains(out, a) { // pop=127.0.0.1:110 and 127.0.0.1
				out = append(out, a)
			}
		}
	}
	return out
}

// popAuthFiles are where --pop finds its accounts without --pop-auth:
// relaykeeper's own file, then E-MailRelay's default, which the user
// guide's "emailrelay --pop --no-smtp --log --close-stderr" relies on.
var popAuthFiles = []string{DefaultPOPAuth, "/etc/emailrelay.auth"}

// POPAuthDefault is the secrets file of --pop without --pop-auth: the first
// of popAuthFiles that exists, else the first (for the error).
func POPAuthDefault() string { return popAuthDefault(popAuthFiles) }

func popAuthDefault(files []string) string {
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return files[0]
}

// CheckFrontendFiles opens the files that the POP3 server and the admin
// front ends read when they start (--pop-auth, or its default, and
// --admin-password-file), as the start would, so that --check, which
// starts no listener, finds what the start would refuse. Errors name
// the setting (Setting). For --check, log gets the warnings the start
// gives when it opens them (a secrets file every user may read); a start
// gives them itself, once.
func (c *Config) CheckFrontendFiles(log *slog.Logger) error {
	if !c.Check {
		log = nil
	}
	if c.POP.Enabled {
		if _, err := auth.OpenServerFile(cmp.Or(c.POP.Auth, POPAuthDefault()), c.Domain, log); err != nil {
			if c.POP.Auth == "" && errors.Is(err, fs.ErrNotExist) {
				// Both defaults count: say so, or a user coming
				// from E-MailRelay thinks its file is ignored.
				err = fmt.Errorf("without --pop-auth FILE, --pop reads %s, else E-MailRelay's %s, and neither exists: %w",
					popAuthFiles[0], popAuthFiles[1], err)
			}
			return Setting("pop.auth", err)
		}
	}
	if f := c.Admin.PasswordFile; f != "" && (c.Admin.Port != 0 || c.Admin.HTTP != "") {
		if _, err := ReadAdminPasswordFile(f); err != nil {
			return Setting("admin.password_file", err)
		}
	}
	return nil
}

// CheckPidFile says, without writing it, whether --pid-file
// (process.pid_file) could be written, as the start writes it once bound:
// --check, which binds nothing, refuses a directory there, or a place the
// relay may not write, as the start does. Errors name the setting
// (Setting), in the start's words.
func (c *Config) CheckPidFile() error {
	if err := pidfile.Check(c.Process.PidFile); err != nil {
		return Setting("process.pid_file", fmt.Errorf("%s: %w", c.Process.PidFile, err))
	}
	return nil
}
