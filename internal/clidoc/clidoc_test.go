package clidoc

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEsc(t *testing.T) {
	for in, want := range map[string]string{
		`--spool-dir`:        `\-\-spool\-dir`,
		`a\b`:                `a\eb`,
		".starts with a dot": `\&.starts with a dot`,
		"'quote":             `\&'quote`,
	} {
		if got := esc(in); got != want {
			t.Errorf("esc(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestSubcommandPage(t *testing.T) {
	var b bytes.Buffer
	err := SubcommandPage(&b, Subcommand{Name: "demo", Help: "show the parts", Usage: `usage: relaykeeper demo [--x N]
       relaykeeper demo other

A paragraph that
runs on.

  --x N          the x
                 continued
  -q             quiet

  $ relaykeeper demo --x 1
  output
`})
	if err != nil {
		t.Fatal(err)
	}
	want := `.TH "RELAYKEEPER\-DEMO" 8 "" "relaykeeper" "System Manager's Manual"
.SH NAME
relaykeeper\-demo \- show the parts
.SH SYNOPSIS
relaykeeper demo [\-\-x N]
.br
relaykeeper demo other
.SH DESCRIPTION
.PP
A paragraph that runs on.
.TP
\fB\-\-x\fR \fIN\fR
the x continued
.TP
\fB\-q\fR
quiet
.PP
.nf
.RS 2
  $ relaykeeper demo \-\-x 1
  output
.RE
.fi
.SH SEE ALSO
\fBrelaykeeper\fR(8), \fBrelaykeeper.toml\fR(5)
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("SubcommandPage: -want +got\n%s", d)
	}
	if err := SubcommandPage(&b, Subcommand{Name: "bad", Usage: "Usage is not first"}); err == nil {
		t.Error("a usage text without \"usage: \" was accepted")
	}
}

// conf is a configuration struct as config.go declares them.
type conf struct {
	Mode string  `toml:"mode"`
	Log  logConf `toml:"log"`
}

type logConf struct {
	MinBackoff time.Duration `toml:"min_backoff"`
	MaxBackoff time.Duration `toml:"max_backoff"`
	File       string        `toml:"file"`
	Secret     string        `toml:"-"`
}

const confSource = `package x

type conf struct {
	// Mode is the mode.
	Mode string
	Log logConf
}

// logConf configures logs.
type logConf struct {
	// MinBackoff and MaxBackoff bound the delay.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	File string
	Secret string
}
`

func TestConfigPage(t *testing.T) {
	var b bytes.Buffer
	p := Program{Groups: []Group{{Title: "Logging", Switches: []Switch{{Long: "log-file", Arg: "FILE", Keys: []string{"log.file"}}}}}}
	if err := ConfigPage(&b, []byte(confSource), conf{Mode: "server", Log: logConf{MinBackoff: 5 * time.Minute}}, p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\\fBmode\\fR (string)\nmode is the mode. Default: \"server\".\n",
		".SH \"[log]\"\n.PP\nlogConf configures logs.\n",
		"\\fBmin_backoff\\fR (duration)\nmin_backoff and max_backoff bound the delay. Default: \"5m\".\n",
		"\\fBmax_backoff\\fR (duration)\nmin_backoff and max_backoff bound the delay.\n",
		"\\fBfile\\fR (string)\nSet by \\-\\-log\\-file.\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the page lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "secret") {
		t.Errorf("a toml:\"-\" field is on the page:\n%s", b.String())
	}
}
