package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestTrim17RevDur2Whole: revDur2Whole, which matches the end line alone
// to be quick, tells whole messages from parts as the regexp over the
// whole message did.
func TestTrim17RevDur2Whole(t *testing.T) {
	whole := strings.ReplaceAll(revDur2Body("crash-tag-000007", 30), "\n", "\r\n")
	other := strings.ReplaceAll(revDur2Body("crash-tag-000008", 3), "\n", "\r\n")
	end := strings.Index(whole, "End-Of ")
	cases := map[string]string{
		"whole":               whole,
		"no end line":         whole[:end],
		"end line cut":        whole[:len(whole)-2],
		"end line not last":   whole + "trailer\r\n",
		"end line mid-line":   whole[:end-2] + whole[end:],
		"a line missing":      strings.Replace(whole, "crash-tag-000007 line 000003", "gone", 1),
		"a line too many":     whole[:end] + "crash-tag-000007 line 000099\r\n" + whole[end:],
		"another's end":       whole[:end] + other[strings.Index(other, "End-Of "):],
		"LF end":              whole[:len(whole)-2] + "\n",
		"empty":               "",
		"end line only":       "End-Of crash-tag-000007 n=0\r\n",
		"one byte":            "\n",
		"untagged whole-like": whole[strings.Index(whole, "\r\n\r\n"):],
	}
	old := func(data []byte) (string, bool) {
		m := tagRE.FindSubmatch(data)
		if m == nil {
			return "", false
		}
		tag := string(m[1])
		e := regexp.MustCompile(`(?m)^End-Of (crash-tag-\d+) n=(\d+)\r\n\z`).FindSubmatch(data)
		if e == nil || string(e[1]) != tag {
			return tag, false
		}
		n, _ := strconv.Atoi(string(e[2]))
		return tag, strings.Count(string(data), tag+" line ") == n
	}
	for name, data := range cases {
		tag, ok := revDur2Whole([]byte(data))
		wtag, wok := old([]byte(data))
		if tag != wtag || ok != wok {
			t.Errorf("%s: revDur2Whole = %q, %v; the whole-message regexp says %q, %v", name, tag, ok, wtag, wok)
		}
		if ok != (name == "whole") {
			t.Errorf("%s: whole = %v", name, ok)
		}
	}
}
