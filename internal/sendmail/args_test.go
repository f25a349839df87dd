package sendmail

import (
	"bytes"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		argv0 string
		args  string
		want  Invocation
	}{
		{"sendmail", "you@example.com", Invocation{Recipients: []string{"you@example.com"}}},
		{"/usr/sbin/sendmail", "-t -i -f me@example.org -F Jo -oem",
			Invocation{Headers: true, IgnoreDots: true, From: "me@example.org", FromSet: true, FullName: "Jo", ErrorMode: "m"}},
		{"sendmail", "-ti -fme@example.org -FJo", Invocation{Headers: true, IgnoreDots: true, From: "me@example.org", FromSet: true, FullName: "Jo"}},
		{"sendmail", "-oi -r <me@example.org> a@x b@y", Invocation{IgnoreDots: true, From: "me@example.org", FromSet: true, Recipients: []string{"a@x", "b@y"}}},
		{"sendmail", "-f <> a@x", Invocation{FromSet: true, Recipients: []string{"a@x"}}},
		{"sendmail", "-bs", Invocation{Mode: SMTP}},
		{"sendmail", "-bp", Invocation{Mode: ListQueue}},
		{"sendmail", "-q", Invocation{Mode: RunQueue}},
		{"sendmail", "-q15m", Invocation{Mode: RunQueue}},
		{"sendmail", "-bi", Invocation{Mode: Newaliases}},
		{"sendmail", "-bm -C /etc/rk.toml -- -odd@x", Invocation{ConfigFile: "/etc/rk.toml", Recipients: []string{"-odd@x"}}},
		{"sendmail", "-v -odb -oQ/var/spool -N never -R hdrs -V id -B 8BITMIME -h 5 -L tag -U -G a@x",
			Invocation{Notify: "never", Ret: "hdrs", EnvID: "id", Recipients: []string{"a@x"}}},
		{"mailq", "", Invocation{Mode: ListQueue}},
		{"mailq", "-bs", Invocation{Mode: ListQueue}},
		{"newaliases", "", Invocation{Mode: Newaliases}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.argv0, strings.Fields(tt.args))
		if err != nil {
			t.Errorf("Parse(%q, %q) = %v", tt.argv0, tt.args, err)
			continue
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("Parse(%q, %q): -want +got\n%s", tt.argv0, tt.args, d)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ args, want string }{
		{"", "no recipients"},
		{"-i", "no recipients"},
		{"-Z a@x", "unknown option -Z"},
		{"-f", "option -f needs a value"},
		{"-b", "option -b needs a mode"},
		{"-bd", "-bd (run as a daemon)"},
		{"-bx a@x", "unsupported mode -bx"},
		{"-o", "option -o needs a letter"},
	}
	for _, tt := range tests {
		_, err := Parse("sendmail", strings.Fields(tt.args))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v; want an error saying %q", tt.args, err, tt.want)
		}
	}
}

func TestInvoked(t *testing.T) {
	for name, want := range map[string]bool{
		"/usr/sbin/sendmail": true, "mailq": true, "/usr/bin/newaliases": true,
		"relaykeeper": false, "/usr/sbin/relaykeeper": false, "sendmail.postfix": false,
	} {
		if got := Invoked(name); got != want {
			t.Errorf("Invoked(%q) = %v; want %v", name, got, want)
		}
	}
}

func TestHasFieldAndFromField(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{"From: a@b\nSubject: x\n\nbody\n", true},
		{"Subject: x\r\nfrom:a@b\r\n\r\n", true},
		{"Subject: x\n\nFrom: in the body\n", false},
		{"Subject: x\n folded From: no\n\n", false},
		{"Subject: x\nnot a field\nFrom: a@b\n", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := HasField([]byte(tt.msg), "From"); got != tt.want {
			t.Errorf("HasField(%q, From) = %v; want %v", tt.msg, got, tt.want)
		}
	}
	for _, tt := range []struct{ name, addr, want string }{
		{"", "a@b", "From: a@b\n"},
		{"Jo Bloggs", "a@b", "From: Jo Bloggs <a@b>\n"},
		{"Bloggs, Jo", "a@b", "From: \"Bloggs, Jo\" <a@b>\n"},
		{"Jö", "a@b", "From: =?utf-8?q?J=C3=B6?= <a@b>\n"},
	} {
		if got := FromField(tt.name, tt.addr); got != tt.want {
			t.Errorf("FromField(%q, %q) = %q; want %q", tt.name, tt.addr, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"-t -i -f a@b -F Jo -oem", "-bs", "-q15m", "-fa@b -- x", "-C", "-o"} {
		f.Add("sendmail", s)
	}
	f.Fuzz(func(t *testing.T, argv0, args string) {
		inv, err := Parse(argv0, strings.Fields(args))
		if err == nil && inv.Mode == Deliver && len(inv.Recipients) == 0 && !inv.Headers {
			t.Errorf("Parse(%q, %q) delivers to nobody without an error", argv0, args)
		}
	})
}

var _ net.Listener = (*StdioListener)(nil)

func TestSubmitArgsAndMessage(t *testing.T) {
	inv, _ := Parse("sendmail", strings.Fields("-t -f me@example.org -F Jo a@x b@y"))
	if got, want := inv.SubmitArgs(), []string{"-f", "me@example.org", "-t", "a@x", "b@y"}; !slices.Equal(got, want) {
		t.Errorf("SubmitArgs() = %q; want %q", got, want)
	}
	inv, _ = Parse("sendmail", strings.Fields("-f <> a@x"))
	if got, want := inv.SubmitArgs(), []string{"-f", "<>", "a@x"}; !slices.Equal(got, want) {
		t.Errorf("SubmitArgs() = %q; want %q", got, want)
	}
	for _, tt := range []struct{ args, in, want string }{
		{"-F Jo -f me@example.org a@x", "Subject: s\n\nb\n", "From: Jo <me@example.org>\nSubject: s\n\nb\n"},
		{"-F Jo -f me@example.org a@x", "From: x@y\n\nb\n", "From: x@y\n\nb\n"},
		{"-f me@example.org a@x", "Subject: s\n\nb\n", "Subject: s\n\nb\n"},
		// An address without a domain gets the origin, as in Postfix.
		{"-F Jo -f backup a@x", "Subject: s\n\nb\n", "From: Jo <backup@example.com>\nSubject: s\n\nb\n"},
	} {
		inv, _ := Parse("sendmail", strings.Fields(tt.args))
		r, err := inv.Message(strings.NewReader(tt.in), "example.com")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		if string(got) != tt.want {
			t.Errorf("%s: Message(%q) = %q; want %q", tt.args, tt.in, got, tt.want)
		}
	}
}

func TestConfig(t *testing.T) {
	if got := (Invocation{ConfigFile: "/x.toml"}).Config(); got != "/x.toml" {
		t.Errorf("Config() with -C /x.toml = %q; want /x.toml", got)
	}
	_, err := os.Stat(DefaultConfigFile)
	want := ""
	if err == nil {
		want = DefaultConfigFile
	}
	if got := (Invocation{}).Config(); got != want {
		t.Errorf("Config() without -C = %q; want %q", got, want)
	}
}

// TestHandBackOnlyTheFilteredMessage: in a pipe: filter's environment, the
// invocation with the filtered message's envelope hands it back; another
// envelope, -t, or no such environment queues as usual.
func TestHandBackOnlyTheFilteredMessage(t *testing.T) {
	t.Setenv("RELAYKEEPER_PIPE_FILTER", "") // so that Unsetenv below is undone
	os.Unsetenv("RELAYKEEPER_PIPE_FILTER")
	if inv, _ := Parse("sendmail", []string{"-i", "-f", "a@x", "--", "b@y"}); inv.Mode != Deliver {
		t.Errorf("outside a filter: mode %v; want Deliver", inv.Mode)
	}
	name, value, _ := strings.Cut(HandBackEnv("a@x", []string{"b@y", "c@z"}), "=")
	t.Setenv(name, value)
	for _, tt := range []struct {
		args []string
		want Mode
	}{
		{[]string{"-i", "-f", "a@x", "--", "b@y", "c@z"}, HandBack},
		{[]string{"-i", "-f", "<a@x>", "b@y", "c@z"}, HandBack},
		{[]string{"-i", "-f", "a@x", "--", "b@y"}, Deliver},
		{[]string{"-i", "-f", "admin@x", "--", "b@y", "c@z"}, Deliver},
		{[]string{"-t", "-i", "-f", "a@x", "b@y", "c@z"}, Deliver},
		{[]string{"-bp"}, ListQueue},
	} {
		if inv, err := Parse("sendmail", tt.args); err != nil || inv.Mode != tt.want {
			t.Errorf("Parse(%q) in a filter: mode %v, %v; want %v", tt.args, inv.Mode, err, tt.want)
		}
	}
	var out bytes.Buffer
	if code := HandBackMessage(strings.NewReader("Subject: x\r\n\r\nbody\r\n"), &out, io.Discard); code != 0 || out.String() != "Subject: x\r\n\r\nbody\r\n" {
		t.Errorf("HandBackMessage: exit %d, wrote %q", code, out.String())
	}
}
