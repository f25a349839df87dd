package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/config"
)

// settings drops Origin, which records where values came from, to compare
// the settings alone.
func settings(c config.Config) config.Config {
	c.Origin = config.Origin{}
	return c
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want func(c *config.Config)
	}{
		{"nothing", nil, func(c *config.Config) {}},
		{
			name: "classic server",
			args: strings.Fields("--as-server --port 10025 --spool-dir /tmp/spool"),
			want: func(c *config.Config) {
				c.Mode = config.ModeServer
				c.Log.Enabled = true
				c.SMTP.Port = 10025
				c.Spool.Dir = "/tmp/spool"
			},
		},
		{
			name: "classic client",
			args: strings.Fields("--as-client smarthost:smtp --spool-dir /tmp/spool"),
			want: func(c *config.Config) {
				c.Mode = config.ModeClient
				c.Forward.To = "smarthost:25"
				c.SMTP.Disabled = true
				c.Forward.AtStartup = true
				c.Spool.Dir = "/tmp/spool"
			},
		},
		{
			name: "classic server with polling",
			args: strings.Fields("--as-server --poll 3600 --forward-to smarthost:smtp"),
			want: func(c *config.Config) {
				c.Mode = config.ModeServer
				c.Log.Enabled = true
				c.Forward.Poll = time.Hour
				c.Forward.PollSet = true
				c.Forward.To = "smarthost:25"
			},
		},
		{
			name: "admin HTTP",
			args: strings.Fields("--admin-http 127.0.0.1:8025 --admin-password-file /etc/relaykeeper/admin.password"),
			want: func(c *config.Config) {
				c.Admin.HTTP = "127.0.0.1:8025"
				c.Admin.PasswordFile = "/etc/relaykeeper/admin.password"
			},
		},
		{
			name: "classic proxy",
			args: strings.Fields("--as-proxy smarthost:smtp"),
			want: func(c *config.Config) {
				c.Mode = config.ModeProxy
				c.Forward.To = "smarthost:25"
				c.Forward.Immediate = true
				c.Log.Enabled = true
			},
		},
		{
			name: "short letters and = values",
			args: []string{"-d", "-p", "2525", "-s=/tmp/s", "-r", "-l", "-v", "-M", "1000", "-D", "relay.example",
				"-N", "/tmp/log", "-i", "/run/rk.pid", "-o", "[::1]:2526", "-1", "-m", "-f", "-U", "5", "-T", "1m"},
			want: func(c *config.Config) {
				c.Log.Enabled = true
				c.SMTP.Port = 2525
				c.Spool.Dir = "/tmp/s"
				c.SMTP.RemoteClients = true
				c.Log.Verbose = true
				c.SMTP.MaxMessageSize = 1000
				c.Domain = "relay.example"
				c.Log.File = "/tmp/log"
				c.Process.PidFile = "/run/rk.pid"
				c.Forward.To = "[::1]:2526"
				c.Forward.OnDisconnect = true
				c.Forward.Immediate = true
				c.Forward.AtStartup = true
				c.Forward.ConnectionTimeout = 5 * time.Second
				c.Forward.ResponseTimeout = time.Minute
			},
		},
		{
			name: "timeouts in seconds or durations",
			args: []string{"--idle-timeout=90", "--connection-timeout", "90s", "--response-timeout", "2m"},
			want: func(c *config.Config) {
				c.SMTP.IdleTimeout = 90 * time.Second
				c.Forward.ConnectionTimeout = 90 * time.Second
				c.Forward.ResponseTimeout = 2 * time.Minute
			},
		},
		{
			name: "poll 0 is forward on disconnect",
			args: strings.Fields("--poll 0 --forward-to smarthost"),
			want: func(c *config.Config) {
				c.Forward.PollSet = true
				c.Forward.OnDisconnect = true
				c.Forward.To = "smarthost:25"
			},
		},
		{
			name: "repeatable and comma-separated interfaces",
			args: []string{"--interface", "127.0.0.1,::1", "-I", "smtp=192.0.2.1:2525", "--interface=pop=127.0.0.1:110,admin=127.0.0.1:8080"},
			want: func(c *config.Config) {
				c.SMTP.Interfaces = []string{"127.0.0.1", "::1", "192.0.2.1:2525"}
				c.OtherInterfaces = map[string][]string{"pop": {"127.0.0.1:110"}, "admin": {"127.0.0.1:8080"},
					config.Unqualified: {"127.0.0.1", "::1"}}
			},
		},
		{
			name: "compatibility switches are ignored",
			args: strings.Fields("--no-daemon --log-time -t -L --log-address --forward-to-some"),
			want: func(c *config.Config) {},
		},
		{
			name: "syslog and close-stderr",
			args: strings.Fields("-e -k --syslog=local3"),
			want: func(c *config.Config) { c.Log.CloseStderr, c.Log.Syslog = true, "local3" },
		},
		{
			name: "no-syslog",
			args: strings.Fields("--close-stderr --syslog -n"),
			want: func(c *config.Config) { c.Log.CloseStderr, c.Log.Syslog, c.Log.NoSyslog = true, "mail", true },
		},
		{
			name: "no-smtp",
			args: strings.Fields("-X --forward-to smarthost:25 --forward"),
			want: func(c *config.Config) {
				c.SMTP.Disabled = true
				c.Forward.To = "smarthost:25"
				c.Forward.AtStartup = true
			},
		},
		{
			// (Not --forward-to after --as-proxy: E-MailRelay refuses the
			// pair, and so does relaykeeper.)
			name: "later switch wins",
			args: strings.Fields("--as-proxy a:25 --immediate=false"),
			want: func(c *config.Config) {
				c.Mode = config.ModeProxy
				c.Forward.To = "a:25"
				c.Log.Enabled = true
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cmd, err := parseArgs(tt.args, new(bytes.Buffer))
			if err != nil || cmd != nil {
				t.Fatalf("parseArgs(%q) = %v, %v; want no command and no error", tt.args, cmd, err)
			}
			want := config.Default()
			tt.want(&want)
			if !reflect.DeepEqual(settings(got), want) {
				t.Errorf("parseArgs(%q) =\n%+v\nwant\n%+v", tt.args, settings(got), want)
			}
		})
	}
}

func TestParseArgsConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "relaykeeper.toml")
	src := `mode = "server"
[smtp]
port = 2525
interfaces = ["127.0.0.1"]
remote_clients = true
[spool]
dir = "/var/spool/file"
[forward]
to = "filehost:smtp"
poll = "10m"
[log]
verbose = true
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := func(c *config.Config) {
		c.SMTP.Port = 2525
		c.SMTP.Interfaces = []string{"127.0.0.1"}
		c.SMTP.RemoteClients = true
		c.Spool.Dir = "/var/spool/file"
		c.Forward.To = "filehost:25"
		c.Forward.Poll = 10 * time.Minute
		c.Log.Verbose = true
	}
	tests := []struct {
		name string
		args []string
		want func(c *config.Config)
	}{
		{"file alone", []string{"--config", file}, func(c *config.Config) {}},
		{"switches override", []string{"--port", "10025", "--config", file, "--spool-dir", "/tmp/spool", "--remote-clients=false"},
			func(c *config.Config) {
				c.SMTP.Port = 10025
				c.Spool.Dir = "/tmp/spool"
				c.SMTP.RemoteClients = false
			}},
		{"interface replaces the file's list", []string{"--config=" + file, "-I", "::1", "-I", "192.0.2.1"},
			func(c *config.Config) {
				c.SMTP.Interfaces = []string{"::1", "192.0.2.1"}
				c.OtherInterfaces = map[string][]string{config.Unqualified: {"::1", "192.0.2.1"}}
			}},
		{"mode switch over the file", []string{"--config", file, "--as-proxy", "other:2525"},
			func(c *config.Config) {
				c.Mode = config.ModeProxy
				c.Forward.To = "other:2525"
				c.Forward.Immediate = true
				c.Log.Enabled = true
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := parseArgs(tt.args, new(bytes.Buffer))
			if err != nil {
				t.Fatalf("parseArgs(%q) = %v", tt.args, err)
			}
			want := config.Default()
			fromFile(&want)
			tt.want(&want)
			if !reflect.DeepEqual(settings(got), want) {
				t.Errorf("parseArgs(%q) =\n%+v\nwant\n%+v", tt.args, settings(got), want)
			}
			if got.Origin.File != file {
				t.Errorf("Origin.File = %q; want %q", got.Origin.File, file)
			}
		})
	}
}

func TestParseArgsCommand(t *testing.T) {
	tests := []struct {
		args []string
		want *Command
	}{
		{[]string{"queue"}, &Command{Name: "queue", Args: []string{}}},
		{[]string{"stats", "--json"}, &Command{Name: "stats", Args: []string{"--json"}}},
		{[]string{"postfix-enforcer", "--port", "x", "y"}, &Command{Name: "postfix-enforcer", Args: []string{"--port", "x", "y"}}},
	}
	for _, tt := range tests {
		_, got, err := parseArgs(tt.args, new(bytes.Buffer))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseArgs(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[smtp]\nprot = 25\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown switch --bogus (see relaykeeper --help)"},
		{[]string{"-P"}, "unknown switch -P (see relaykeeper --help)"}, // (-Z is E-MailRelay's --server-smtp-config)
		{[]string{"--port"}, "--port needs a value (see relaykeeper --help)"},
		{[]string{"--port", "abc"}, `--port "abc": want a port number from 1 to 65535 (see relaykeeper --help)`},
		{[]string{"-p", "70000"}, `-p "70000": want a port number from 1 to 65535 (see relaykeeper --help)`},
		{[]string{"--poll", "-1"}, `--poll "-1": invalid duration "-1"; want seconds or a duration such as "90s" or "5m" (see relaykeeper --help)`},
		{[]string{"--poll", "-1s"}, `--poll "-1s": want 0 or more seconds (see relaykeeper --help)`},
		{[]string{"--idle-timeout", "0"}, `--idle-timeout "0": want a positive number of seconds (see relaykeeper --help)`},
		{[]string{"--size", "-5"}, `--size "-5": want a number of bytes, 0 for no limit (see relaykeeper --help)`},
		{[]string{"--forward-to", "host:nosuchservice"}, `--forward-to "host:nosuchservice": "host:nosuchservice": unknown port or service "nosuchservice" (see relaykeeper --help)`},
		{[]string{"--interface", "ftp=1.2.3.4"}, `--interface "ftp=1.2.3.4": unknown listener "ftp"; want smtp=, submission=, smtps=, reinject=, pop= or admin= (see relaykeeper --help)`},
		{[]string{"--interface", "127.0.0.1,"}, `--interface "127.0.0.1,": empty address (see relaykeeper --help)`},
		{[]string{"--spool-dir", ""}, `--spool-dir "": empty value (see relaykeeper --help)`},
		{[]string{"--log=maybe"}, `--log=maybe: want true or false (see relaykeeper --help)`},
		{[]string{"--as-server=false"}, `--as-server=false: takes no value (see relaykeeper --help)`},
		{[]string{"--as-server", "--as-proxy", "x:25"}, `--as-proxy "x:25": conflicts with --as-server; give one mode (see relaykeeper --help)`},
		{[]string{"-d", "-q", "x:25"}, `-q "x:25": conflicts with --as-server; give one mode (see relaykeeper --help)`},
		{[]string{"--log", "extra"}, `unexpected argument "extra" (see relaykeeper --help)`},
		{[]string{"--log", "false"}, `unexpected argument "false" (see relaykeeper --help)`},
		{[]string{"---log"}, `bad switch "---log" (see relaykeeper --help)`},
		// Problems only Validate can see name the switch.
		{[]string{"--immediate"}, "--immediate: forwarding while receiving needs a smarthost: set forward.to or --forward-to"},
		{[]string{"--admin-http", "8025"}, `--admin-http: "8025": want HOST:PORT, e.g. 127.0.0.1:8025`},
		{[]string{"--config", bad}, bad + ":2: smtp.prot: unknown key; did you mean smtp.port?"},
		{[]string{"--config", filepath.Join(dir, "absent.toml")}, "config: open " + filepath.Join(dir, "absent.toml") + ": no such file or directory"},
	}
	for _, tt := range tests {
		_, _, err := parseArgs(tt.args, new(bytes.Buffer))
		var ee *exitError
		if !errors.As(err, &ee) || ee.status != 2 {
			t.Errorf("parseArgs(%q) = %v; want an exitError with status 2", tt.args, err)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("parseArgs(%q) = %q; want %q", tt.args, got, tt.want)
		}
	}
}

func TestParseArgsSwitchNamedByValidate(t *testing.T) {
	// --as-server plus a file without a smarthost but forwarding while
	// receiving: the problem is the file's, so it names the file's line.
	// (Polling without a smarthost is fine: stored mail goes by MX.)
	file := filepath.Join(t.TempDir(), "r.toml")
	if err := os.WriteFile(file, []byte("[forward]\nimmediate = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := parseArgs([]string{"--config", file, "--as-server"}, new(bytes.Buffer))
	want := file + ":2: forward.immediate: forwarding while receiving needs a smarthost: set forward.to or --forward-to"
	if err == nil || err.Error() != want {
		t.Errorf("parseArgs = %v; want %s", err, want)
	}
	// The same from a switch names the switch.
	_, _, err = parseArgs([]string{"--config", file, "-m"}, new(bytes.Buffer))
	want = "-m: forwarding while receiving needs a smarthost: set forward.to or --forward-to"
	if err == nil || err.Error() != want {
		t.Errorf("parseArgs = %v; want %s", err, want)
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--as-server", "--help"}} {
		var out bytes.Buffer
		_, _, err := parseArgs(args, &out)
		var ee *exitError
		if !errors.As(err, &ee) || ee.status != 0 {
			t.Errorf("parseArgs(%q) = %v; want exit status 0", args, err)
		}
		help := out.String()
		for _, want := range []string{
			"never forks", "foreground", "systemd",
			"Modes:", "Forwarding:", "Listening:", "Spool:", "Logging:", "Process:",
			"compatibility",
			"relaykeeper --as-server --port 10025 --spool-dir /tmp/spool",
			"relaykeeper --as-client smarthost:smtp --spool-dir /tmp/spool",
			"relaykeeper --as-server --poll 3600 --forward-to smarthost:smtp",
			"relaykeeper --as-proxy smarthost:smtp",
		} {
			if !strings.Contains(help, want) {
				t.Errorf("--help does not say %q", want)
			}
		}
		for _, o := range config.Switches() {
			if !strings.Contains(help, "--"+o.Long) {
				t.Errorf("--help does not list --%s", o.Long)
			}
			if o.Short != "" && !strings.Contains(help, "-"+o.Short+",") {
				t.Errorf("--help does not list -%s", o.Short)
			}
		}
		for _, c := range config.Subcommands {
			if !strings.Contains(help, c.Name) {
				t.Errorf("--help does not list the %s command", c.Name)
			}
		}
	}

	for _, args := range [][]string{{"--version"}, {"-V"}} {
		var out bytes.Buffer
		_, _, err := parseArgs(args, &out)
		var ee *exitError
		if !errors.As(err, &ee) || ee.status != 0 {
			t.Errorf("parseArgs(%q) = %v; want exit status 0", args, err)
		}
		if got, want := out.String(), "relaykeeper "+version+"\n"; got != want {
			t.Errorf("parseArgs(%q) printed %q; want %q", args, got, want)
		}
	}
}

func TestReportArgsError(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		wantOut    string
	}{
		{&exitError{status: 0}, 0, ""},
		{usageError(errors.New("unknown switch --x")), 2, "relaykeeper: unknown switch --x (see relaykeeper --help)\n"},
		{&exitError{status: 2, err: config.Problems{{Key: "a", Msg: "one"}, {Key: "b", Msg: "two"}}}, 2,
			"relaykeeper: a: one\nrelaykeeper: b: two\n"},
		{errors.New("surprise"), 1, "relaykeeper: surprise\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if got := reportArgsError(&out, tt.err); got != tt.wantStatus || out.String() != tt.wantOut {
			t.Errorf("reportArgsError(%v) = %d, printed %q; want %d, %q", tt.err, got, out.String(), tt.wantStatus, tt.wantOut)
		}
	}
}
