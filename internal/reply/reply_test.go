package reply

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   []string
		want Reply
	}{
		{[]string{"250 ok"}, Reply{Code: 250, Lines: []string{"ok"}}},
		{[]string{"354"}, Reply{Code: 354, Lines: []string{""}}},
		{[]string{"550-5.7.1 [192.0.2.1] Our system has detected", "550-5.7.1 that this message is", "550 5.7.1 likely unsolicited mail. x - gsmtp"},
			Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"5.7.1 [192.0.2.1] Our system has detected", "5.7.1 that this message is", "5.7.1 likely unsolicited mail. x - gsmtp"}}},
		{[]string{"250-mx.example Hello", "250-PIPELINING", "250 8BITMIME"},
			Reply{Code: 250, Lines: []string{"mx.example Hello", "PIPELINING", "8BITMIME"}}},
		{[]string{"421 4.7.0 Try again later"}, Reply{Code: 421, Enhanced: "4.7.0", Lines: []string{"4.7.0 Try again later"}}},
		// Not an enhanced code: a class of 3, a part too long, a sign.
		{[]string{"550 3.1.1 x"}, Reply{Code: 550, Lines: []string{"3.1.1 x"}}},
		{[]string{"550 5.1.1234 x"}, Reply{Code: 550, Lines: []string{"5.1.1234 x"}}},
		{[]string{"550 5.+1.1 x"}, Reply{Code: 550, Lines: []string{"5.+1.1 x"}}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
		if w := got.Wire(); !cmp.Equal(w, tt.in) {
			t.Errorf("Parse(%q).Wire() = %q; want the input back", tt.in, w)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range [][]string{
		nil,
		{""},
		{"25"},
		{"abc ok"},
		{"199 too low"},
		{"600 too high"},
		{"+50 sign"},
		{"250_bad separator"},
		{"250-more", "251 other code"},
		{"250-more"},                      // the reply never ends
		{"250 done", "250 after the end"}, // a line after the last
	} {
		if r, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v; want an error", in, r)
		}
	}
}

// TestLo26LongReplyKeptBounded: a reply of more than 100 lines (a
// 3,000-line 550 from an upstream) was malformed, so a message the
// upstream refused for good was deferred for good. It is read to its last
// line, its code acted on, and its first 100 lines kept; a bad line past
// the hundredth is still an error.
func TestLo26LongReplyKeptBounded(t *testing.T) {
	long := make([]string, 3000)
	for i := range long {
		long[i] = "550-5.7.1 line"
	}
	long[len(long)-1] = "550 5.7.1 last"
	r, err := Parse(long)
	if err != nil || r.Code != 550 || r.Enhanced != "5.7.1" || len(r.Lines) != maxLines {
		t.Errorf("Parse(%d lines) = code %d %q, %d lines, %v; want 550 5.7.1, %d lines kept", len(long), r.Code, r.Enhanced, len(r.Lines), err, maxLines)
	}
	long[2000] = "250-x"
	if _, err := Parse(long); err == nil {
		t.Errorf("Parse(%d lines, line 2001 of another code) succeeded; want an error", len(long))
	}
}

func TestStringAndText(t *testing.T) {
	r := Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"5.7.1 first", "5.7.1 second"}}
	if got, want := r.String(), "550-5.7.1 first 550 5.7.1 second"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	if got, want := r.Text(), "first second"; got != want {
		t.Errorf("Text() = %q; want %q", got, want)
	}
	if got, want := (Reply{Code: 421}).String(), "421"; got != want {
		t.Errorf("String() of a reply without lines = %q; want %q", got, want)
	}
	if got, want := (Reply{Lines: []string{"no", "code"}}).String(), "no code"; got != want {
		t.Errorf("String() of a reply without a code = %q; want %q", got, want)
	}
}

func TestClasses(t *testing.T) {
	for _, tt := range []struct {
		code           int
		ok, temp, perm bool
	}{
		{0, false, false, false},
		{250, true, false, false},
		{354, true, false, false},
		{421, false, true, false},
		{550, false, false, true},
	} {
		r := Reply{Code: tt.code}
		if r.OK() != tt.ok || r.Temporary() != tt.temp || r.Permanent() != tt.perm {
			t.Errorf("%d: OK, Temporary, Permanent = %v, %v, %v; want %v, %v, %v",
				tt.code, r.OK(), r.Temporary(), r.Permanent(), tt.ok, tt.temp, tt.perm)
		}
	}
}

func TestNew(t *testing.T) {
	got := New(450, "4.3.5 transport x unavailable\r\nsecond")
	want := Reply{Code: 450, Enhanced: "4.3.5", Lines: []string{"4.3.5 transport x unavailable", "second"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("New (-want +got):\n%s", diff)
	}
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		in   string
		want Reply
	}{
		{"550 5.1.1 no such user", Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"5.1.1 no such user"}}},
		{" 554 rejected ", Reply{Code: 554, Lines: []string{"rejected"}}},
		{"550-5.7.1 a 550 5.7.1 b", Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"5.7.1 a 550 5.7.1 b"}}},
		{"451", Reply{Code: 451, Lines: []string{""}}},
	}
	for _, tt := range tests {
		got, err := ParseLine(tt.in)
		if err != nil {
			t.Errorf("ParseLine(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseLine(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	for _, bad := range []string{"", "ok", "5500 x", "55", "099 x", "-55 x"} {
		if r, err := ParseLine(bad); err == nil {
			t.Errorf("ParseLine(%q) = %+v; want an error", bad, r)
		}
	}
}

func TestEnhancedCode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want [3]int
		ok   bool
	}{
		{"5.7.1", [3]int{5, 7, 1}, true},
		{"4.7.26 text", [3]int{4, 7, 26}, true},
		{"2.0.0", [3]int{2, 0, 0}, true},
		{"", [3]int{}, false},
		{"5.7", [3]int{}, false},
		{"6.1.1", [3]int{}, false},
		{"5.7.1.1", [3]int{}, false},
	} {
		got, ok := EnhancedCode(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("EnhancedCode(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"250 ok",
		"550-5.7.1 [192.0.2.1] Our system has detected\n550-5.7.1 that this message is\n550 5.7.1 likely unsolicited mail. - gsmtp",
		"250-mx.example\n250-PIPELINING\n250 SIZE 1000",
		"421",
		"550 5.1.1234 x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lines := strings.Split(s, "\n")
		r, err := Parse(lines)
		if err != nil {
			return
		}
		// What was read writes back and reads again the same.
		again, err := Parse(r.Wire())
		if err != nil || !cmp.Equal(again, r) {
			t.Fatalf("Parse(Wire()) = %+v, %v; want %+v", again, err, r)
		}
		if r.Code < 200 || r.Code > 599 || len(r.Lines) != len(lines) {
			t.Fatalf("Parse(%q) = %+v", lines, r)
		}
		if r.Enhanced != "" && !strings.HasPrefix(r.Lines[0], r.Enhanced) {
			t.Fatalf("Parse(%q): Enhanced %q is not the first line's", lines, r.Enhanced)
		}
		if l, err := ParseLine(r.Wire()[0]); err != nil || l.Code != r.Code {
			t.Fatalf("ParseLine(%q) = %+v, %v; want code %d", r.Wire()[0], l, err, r.Code)
		}
	})
}

func TestIsEnhanced(t *testing.T) {
	for s, want := range map[string]bool{
		"5.7.1": true, "4.7.26": true, "2.0.0": true, "5.999.999": true,
		"": false, "5.7": false, "3.1.1": false, "5.7.1 text": false, "5.1234.1": false, "5..1": false, "5.7.1.": false,
	} {
		if got := IsEnhanced(s); got != want {
			t.Errorf("IsEnhanced(%q) = %v; want %v", s, got, want)
		}
	}
}
