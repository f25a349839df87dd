package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// writeFile puts src in a temporary file and returns its name.
func writeFile(t testing.TB, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relaykeeper.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// withoutOrigin drops what Load records about positions, to compare
// settings only.
func withoutOrigin(c Config) Config {
	c.Origin = Origin{}
	return c
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want func(c *Config)
	}{
		{"empty", "", func(c *Config) {}},
		{
			name: "good file",
			src: `mode = "proxy"
domain = "relay.example"
[smtp]
port = 2525
interfaces = ["127.0.0.1", "::1"]
remote_clients = true
max_message_size = 0
[spool]
dir = "/tmp/spool"
[forward]
to = "smarthost:smtp"
immediate = true
[delivery]
connections = 1
[log]
enabled = true
mail_log = "/var/log/relaykeeper/mail.log"
[process]
pid_file = "/run/relaykeeper.pid"
`,
			want: func(c *Config) {
				c.Mode = ModeProxy
				c.Domain = "relay.example"
				c.SMTP.Port = 2525
				c.SMTP.Interfaces = []string{"127.0.0.1", "::1"}
				c.SMTP.RemoteClients = true
				c.SMTP.MaxMessageSize = 0
				c.Spool.Dir = "/tmp/spool"
				c.Forward.To = "smarthost:25"
				c.Forward.Immediate = true
				c.Delivery.Connections = 1
				c.Log.Enabled = true
				c.Log.MailLog = "/var/log/relaykeeper/mail.log"
				c.Process.PidFile = "/run/relaykeeper.pid"
			},
		},
		{
			name: "durations",
			src: `[smtp]
idle_timeout = "90s"
transaction_timeout = "5m"
shutdown_grace = 3
[forward]
poll = "3600"
connection_timeout = "1m30s"
[delivery]
minimal_backoff_time = "0.5h"
`,
			want: func(c *Config) {
				c.SMTP.IdleTimeout = 90 * time.Second
				c.SMTP.TransactionTimeout = 5 * time.Minute
				c.SMTP.ShutdownGrace = 3 * time.Second
				c.Forward.Poll = time.Hour
				c.Forward.ConnectionTimeout = 90 * time.Second
				c.Delivery.MinBackoff = 30 * time.Minute
			},
		},
		{
			name: "dotted keys and inline tables",
			src:  "smtp.port = 587\nlog = { verbose = true }\n",
			want: func(c *Config) {
				c.SMTP.Port = 587
				c.Log.Verbose = true
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(writeFile(t, tt.src))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(withoutOrigin(got), want) {
				t.Errorf("Load =\n%+v\nwant\n%+v", withoutOrigin(got), want)
			}
		})
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // FILE stands for the file's name
	}{
		{
			name: "unknown key",
			src:  "[smtp]\nport = 25\nprot = 26\n",
			want: []string{"FILE:3: smtp.prot: unknown key; did you mean smtp.port?"},
		},
		{
			name: "keys are case-sensitive",
			src:  "[smtp]\nPort = 25\n",
			want: []string{"FILE:2: smtp.Port: unknown key; did you mean smtp.port?"},
		},
		{
			name: "unknown table reported once",
			src:  "mode = \"server\"\n\n[smpt]\nport = 25\nsize = 1\n",
			want: []string{"FILE:3: smpt: unknown key; did you mean [smtp]?"},
		},
		{
			name: "unknown implicit table",
			src:  "\n\n[nope.deeper]\nx = 1\n",
			want: []string{"FILE:3: nope: unknown key"},
		},
		{
			name: "unknown dotted key",
			src:  "# comment\nsmpt.port = 1\n",
			want: []string{"FILE:2: smpt: unknown key; did you mean [smtp]?"},
		},
		{
			name: "bad type",
			src:  "[smtp]\n\nport = \"25\"\n",
			want: []string{"FILE:3: smtp.port: want an integer, got a string"},
		},
		{
			name: "table where a value belongs",
			src:  "mode = \"server\"\n[domain]\nx = 1\n",
			want: []string{"FILE:2: domain: want a string, got a table"},
		},
		{
			name: "value where a table belongs",
			src:  "smtp = 25\n",
			want: []string{"FILE:1: smtp: want a table, got an integer"},
		},
		{
			name: "bad array element",
			src:  "[smtp]\ninterfaces = [\n  \"::1\",\n  25,\n]\n",
			want: []string{"FILE:2: smtp.interfaces: want an array of strings, got an integer at index 1"},
		},
		{
			name: "bad duration",
			src:  "[forward]\npoll = \"5x\"\n",
			want: []string{`FILE:2: forward.poll: invalid duration "5x"; want seconds or a duration such as "90s" or "5m"`},
		},
		{
			name: "duration of the wrong type",
			src:  "[forward]\npoll = true\n",
			want: []string{`FILE:2: forward.poll: want a duration such as "60s", got a boolean`},
		},
		{
			name: "inline table",
			src:  "mode = \"server\"\nsmtp = { port = \"x\" }\n",
			want: []string{"FILE:2: smtp.port: want an integer, got a string"},
		},
		{
			name: "several problems, in file order",
			src: `domain = 5
[smtp]
port = "25"
prot = 1
idle_timeout = "soon"
[log]
verbose = "yes"
[bogus]
`,
			want: []string{
				"FILE:1: domain: want a string, got an integer",
				"FILE:3: smtp.port: want an integer, got a string",
				"FILE:4: smtp.prot: unknown key; did you mean smtp.port?",
				`FILE:5: smtp.idle_timeout: invalid duration "soon"; want seconds or a duration such as "90s" or "5m"`,
				"FILE:7: log.verbose: want true or false, got a string",
				"FILE:8: bogus: unknown key",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.src)
			_, err := Load(path)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Load = %v; want Problems", err)
			}
			got := strings.Split(err.Error(), "\n")
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = strings.ReplaceAll(w, "FILE", path)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestLoadSyntaxError(t *testing.T) {
	tests := []struct {
		src  string
		line int
	}{
		{"mode = \"server\"\n[smtp\nport = 25\n", 2},
		{"mode = \"server\"\n\n\nmode = \"proxy\"\n", 4},
		{"[smtp]\nport = 25 26\n", 2},
		{"domain = \"unterminated\n", 1},
	}
	for _, tt := range tests {
		path := writeFile(t, tt.src)
		_, err := Load(path)
		var ps Problems
		if !errors.As(err, &ps) || len(ps) != 1 {
			t.Errorf("Load(%q) = %v; want one Problem", tt.src, err)
			continue
		}
		if ps[0].File != path || ps[0].Line != tt.line {
			t.Errorf("Load(%q) = %v; want it at %s:%d", tt.src, err, path, tt.line)
		}
		if prefix := fmt.Sprintf("%s:%d: ", path, tt.line); !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("Load(%q) = %q; want prefix %q", tt.src, err, prefix)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.toml")
	_, err := Load(path)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(%q) = %v; want a not-exist error naming the file", path, err)
	}
}

func TestLoadRecordsLines(t *testing.T) {
	path := writeFile(t, "mode = \"server\"\n\n[smtp]\nport = 2525\n\n[forward]\nto = \"x:25\"\n")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Origin{File: path, Lines: map[string]int{
		"mode": 1, "smtp": 3, "smtp.port": 4, "forward": 6, "forward.to": 7,
	}}
	if !reflect.DeepEqual(c.Origin, want) {
		t.Errorf("Origin = %+v; want %+v", c.Origin, want)
	}
}

// TestExampleFile keeps etc/relaykeeper.toml loadable, at the defaults,
// and complete: a key added to Config must be added to the example too.
func TestExampleFile(t *testing.T) {
	c, err := Load("../../etc/relaykeeper.toml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := withoutOrigin(c), Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("example file =\n%+v\nwant the defaults\n%+v", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	for _, key := range leafKeys(nil, reflect.TypeFor[Config]()) {
		if c.Origin.Lines[key] == 0 {
			t.Errorf("key %s is missing from the example file", key)
		}
	}
}

// leafKeys lists every key a file may set, from the toml tags.
func leafKeys(path toml.Key, t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		key := append(path[:len(path):len(path)], tag)
		if f.Type.Kind() == reflect.Map {
			// Tables of named tables ([transports.NAME]): their names
			// are the operator's; the example shows them commented.
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			keys = append(keys, leafKeys(key, f.Type)...)
			continue
		}
		keys = append(keys, key.String())
	}
	return keys
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"90", 90 * time.Second, true},
		{" 90 ", 90 * time.Second, true},
		{"90s", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"-5s", -5 * time.Second, true},
		{"", 0, false},
		{"5x", 0, false},
		{"-5", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzLoad(f *testing.F) {
	if src, err := os.ReadFile("../../etc/relaykeeper.toml"); err == nil {
		f.Add(string(src))
	}
	for _, s := range []string{
		"",
		"mode = \"proxy\"\n[forward]\nto = \"smarthost:smtp\"\n",
		"[smtp]\nport = \"25\"\nprot = 1\n",
		"smtp.port = 1\nlog = { verbose = true }\n",
		"[[smtp]]\nport = 1\n[[smtp]]\n",
		"[a.b.c]\n\"quoted key\" = 1\n",
		"[smtp]\ninterfaces = [1, \"x\", [2]]\nidle_timeout = 9223372036854775807\n",
		"mode = \"server\"\n[smtp\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		path := writeFile(t, src)
		c, err := Load(path)
		if err != nil {
			var ps Problems
			if errors.As(err, &ps) {
				for _, p := range ps {
					if p.File != path || p.Line < 0 {
						t.Errorf("problem %+v: want File %q and a line", p, path)
					}
				}
			}
			return
		}
		_ = c.Validate()
	})
}

func TestTransportsTables(t *testing.T) {
	path := writeFile(t, "[transports.zombig_name]\nnexthop = \"[smtp.example.net]:587\"\nbind_address = \"192.0.2.10\"\n"+
		"helo_name = \"mail.zombig.name\"\ndestination_rate_delay = \"2s\"\n[transports.other]\nfrobnicate = 1\n")
	c, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), ":7: transports.other.frobnicate: unknown key") {
		t.Errorf("Load error = %v; want the unknown key with its line", err)
	}
	_ = c
	path = writeFile(t, "[transports.zombig_name]\nnexthop = \"[smtp.example.net]:587\"\nbind_address = \"192.0.2.10\"\n"+
		"helo_name = \"mail.zombig.name\"\ndestination_rate_delay = \"2s\"\n")
	c, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Transports["zombig_name"]
	if tr.NextHop != "[smtp.example.net]:587" || tr.BindAddress != "192.0.2.10" || tr.HeloName != "mail.zombig.name" || tr.RateDelay != 2*time.Second {
		t.Errorf("transport = %+v", tr)
	}
}

// TestLoadRefusesDeepKeys: a line of thousands of dotted key parts, which
// the TOML parser would take minutes over (FuzzLoad found it), is refused
// at once with its file and line; dots in strings, comments and
// multi-line strings do not count.
func TestLoadRefusesDeepKeys(t *testing.T) {
	deep := writeFile(t, "# ok\n"+strings.Repeat("a.", 30000)+"a = 1\n")
	start := time.Now()
	_, err := Load(deep)
	if err == nil || !strings.Contains(err.Error(), deep+":2: more than 64 dots") || time.Since(start) > 5*time.Second {
		t.Errorf("Load of a 30,000-deep key: %v after %v; want a quick refusal at line 2", err, time.Since(start))
	}
	dots := strings.Repeat("x.", 100)
	fine := writeFile(t, "domain = \""+dots+"\"\n# "+dots+"\n[policy]\nrelay_domains = ['"+dots+"', \"\"\"\n"+dots+"\n\"\"\"]\n")
	if _, err := Load(fine); err != nil && strings.Contains(err.Error(), "dots") {
		t.Errorf("dots in strings and comments counted: %v", err)
	}
}
