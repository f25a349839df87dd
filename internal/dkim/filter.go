package dkim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// Filter returns a filter that signs a spooled message in place: the
// DKIM-Signature field goes first in the content file, which is replaced
// atomically (a temporary file beside it, fsynced, renamed over it, the
// directory fsynced), as the filter package's built-in filters do.
//
// It signs only a message whose From address is in the signer's domain or
// one below it, and not one it has signed already, so that it can run as a
// client filter, before every delivery attempt. A message it does not sign
// passes (OK) with a Reason that says why. A file that cannot be read or
// replaced gives TempFail.
func (s *Signer) Filter() filter.Filter { return &signFilter{s: s} }

type signFilter struct {
	s *Signer
}

// NeverStops says that signing never ends a forwarding run
// (filter.MayStop).
func (f *signFilter) NeverStops() {}

func (f *signFilter) String() string { return "dkim:" + f.s.selector + "._domainkey." + f.s.domain }

func (f *signFilter) Run(ctx context.Context, contentPath, _ string) filter.Result {
	if err := ctx.Err(); err != nil {
		return tempFail("dkim: %v", err)
	}
	file, err := os.Open(contentPath)
	if err != nil {
		return tempFail("dkim: %v", err)
	}
	defer file.Close()
	sig, info, err := f.s.signature(file)
	if errors.Is(err, errNoFrom) {
		return notSigned("no From field")
	}
	if err != nil {
		return tempFail("dkim: %s: %v", contentPath, err)
	}
	if d := fromDomain(info.from); d == "" {
		return notSigned("From field without an address")
	} else if d != f.s.domain && !strings.HasSuffix(d, "."+f.s.domain) {
		return notSigned("From domain " + d + " is not " + f.s.domain)
	}
	for _, v := range info.sigs {
		if strings.EqualFold(tag(v, "d"), f.s.domain) && strings.EqualFold(tag(v, "s"), f.s.selector) {
			return filter.Result{Outcome: filter.OK, Reason: "dkim: signed already"}
		}
	}
	err = safefile.Replace(contentPath, safefile.Options{}, func(w io.Writer) error {
		if _, err := file.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.WriteString(w, sig); err != nil {
			return err
		}
		return info.copySigned(w, file)
	})
	if err != nil {
		return tempFail("dkim: rewrite %s: %v", contentPath, err)
	}
	return filter.Result{Outcome: filter.OK}
}

func notSigned(why string) filter.Result {
	return filter.Result{Outcome: filter.OK, Reason: "dkim: not signed: " + why}
}

func tempFail(format string, args ...any) filter.Result {
	return filter.Result{Outcome: filter.TempFail, Code: 451, Enhanced: "4.3.0",
		Text: "filter failed, try again later", Reason: strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " ")}
}

// fromDomain is the lower-case domain of the first address in a From
// field's value, or "".
func fromDomain(v string) string {
	var addr string
	if list, err := mail.ParseAddressList(v); err == nil && len(list) > 0 {
		addr = list[0].Address
	} else if i, j := strings.LastIndexByte(v, '<'), strings.LastIndexByte(v, '>'); i >= 0 && j > i {
		addr = v[i+1 : j] // a display name net/mail does not like
	} else {
		addr = strings.TrimSpace(v)
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(addr[at+1:])), ".")
}

// tag returns a tag's value in a DKIM-Signature tag list, white space
// removed.
func tag(list, name string) string {
	for _, t := range strings.Split(list, ";") {
		k, v, ok := strings.Cut(t, "=")
		if ok && strings.TrimSpace(k) == name {
			return strings.Join(strings.Fields(v), "")
		}
	}
	return ""
}
