package pickup

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Flags are "relaykeeper submit"'s switches: sendmail's (-f, -t, -N, -R,
// -V, -i) and emailrelay-submit's long ones, so that a script written for
// either works. Where the two programs give one letter different
// meanings (-t, -N, -V, -i, -F, -C), the letter is sendmail's and
// emailrelay-submit's long form is the way to its meaning.
type Flags struct {
	From                  string
	FromHeaders           bool // -t: recipients from the To, Cc and Bcc headers
	Notify, Ret, EnvID    string
	SpoolDir, ConfigFile  string
	Help                  bool
	Verbose, Filename     bool     // emailrelay-submit's -v and -n: print the content file's path or name
	Content               []string // --content: lines given in base64 (addContent)
	NoStdin, ContentTo    bool     // --no-stdin; --content-to: the recipients as To header fields
	ignoredIDDomain       string
	ignoredDate, ignoredF bool
}

// Register puts the switches on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.From, "f", "", "")
	fs.StringVar(&f.From, "from", "", "")
	fs.BoolVar(&f.FromHeaders, "t", false, "")
	fs.StringVar(&f.Notify, "N", "", "")
	fs.StringVar(&f.Ret, "R", "", "")
	fs.StringVar(&f.EnvID, "V", "", "")
	fs.StringVar(&f.SpoolDir, "spool-dir", "", "")
	fs.StringVar(&f.SpoolDir, "s", "", "")
	fs.StringVar(&f.ConfigFile, "config", "", "")
	fs.Bool("i", false, "")
	fs.Bool("oi", false, "")
	fs.BoolVar(&f.Help, "help", false, "")
	fs.BoolVar(&f.Help, "h", false, "")
	fs.BoolVar(&f.Verbose, "verbose", false, "")
	fs.BoolVar(&f.Verbose, "v", false, "")
	fs.BoolVar(&f.Filename, "filename", false, "")
	fs.BoolVar(&f.Filename, "n", false, "")
	fs.Func("content", "", f.addContent)
	fs.BoolVar(&f.NoStdin, "no-stdin", false, "")
	fs.BoolVar(&f.ContentTo, "content-to", false, "")
	// Date, Message-ID and From are added when the message has none,
	// with or without these.
	fs.BoolVar(&f.ignoredDate, "content-date", false, "")
	fs.BoolVar(&f.ignoredDate, "d", false, "")
	fs.BoolVar(&f.ignoredF, "content-from", false, "")
	fs.StringVar(&f.ignoredIDDomain, "content-message-id", "", "")
}

// Input is the message as emailrelay-submit builds it: the --content
// lines, then the standard input unless --no-stdin, with a To field for
// each recipient first when --content-to asks.
func (f *Flags) Input(stdin io.Reader, rcpts []string) ([]byte, error) {
	var b bytes.Buffer
	if f.ContentTo {
		for _, r := range rcpts {
			fmt.Fprintf(&b, "To: %s\r\n", r)
		}
	}
	for _, line := range f.Content {
		b.WriteString(line + "\r\n")
	}
	if !f.NoStdin {
		if _, err := b.ReadFrom(stdin); err != nil {
			return nil, fmt.Errorf("reading the message: %w", err)
		}
	}
	return b.Bytes(), nil
}

// addContent takes one --content value: lines in base64, separated by
// commas, where an empty or one-character part is an empty line (as
// emailrelay-submit reads them).
func (f *Flags) addContent(v string) error {
	for _, part := range strings.Split(v, ",") {
		if len(part) <= 1 {
			f.Content = append(f.Content, "")
			continue
		}
		line, err := base64.StdEncoding.DecodeString(part)
		if err != nil {
			return fmt.Errorf("%q is not base64", part)
		}
		if bytes.ContainsAny(line, "\r\n") {
			return errors.New("one line per value")
		}
		f.Content = append(f.Content, string(line))
	}
	return nil
}

// Printed is what submit prints for the message stored as id in dir:
// emailrelay-submit's content path (-v) or file name (-n), else the id.
func (f *Flags) Printed(dir, id string) string {
	switch {
	case f.Verbose:
		p, _ := filepath.Abs(filepath.Join(dir, id+".content"))
		return p
	case f.Filename:
		return id + ".content"
	}
	return id
}
