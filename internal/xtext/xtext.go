// Package xtext is RFC 3461's xtext: printable ASCII other than '+' and
// '=' stands for itself, every other byte is "+XX" in upper-case hex. DSN
// parameters (ENVID, ORCPT), the AUTH= parameter, secrets-file fields and
// the spool envelope's Authentication field use it; an ORCPT of RFC
// 6533's utf-8 type uses its utf-8-addr-xtext (EncodeUTF8Addr).
package xtext

import (
	"errors"
	"fmt"
	"strings"
)

// Encode encodes s as xtext.
func Encode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '!' && c <= '~' && c != '+' && c != '=' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('+')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// Decode decodes xtext. It refuses what the RFC does not
// allow: a '+' not followed by two upper-case hex digits, a bare '=', and
// bytes outside '!'..'~'.
func Decode(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) {
				return "", errors.New("'+' must be followed by two upper-case hex digits")
			}
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		case c == '=':
			return "", errors.New("'=' must be written +3D")
		case c < '!' || c > '~':
			return "", errors.New("only printable ASCII is allowed; write other bytes as +XX")
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}

// EncodeUTF8Addr encodes an address of RFC 6533's utf-8 type (an ORCPT
// of "utf-8;...") as utf-8-addr-xtext: printable ASCII other than '+',
// '=' and '\' stands for itself, every other character is "\x{HEX}",
// its code point in upper-case hex, as Postfix's uxtext_quote writes it.
// RFC 3461's "+XX" is not part of that encoding: a reader keeps it as
// it stands.
func EncodeUTF8Addr(s string) string { return encodeUTF8(s, false) }

// EncodeUTF8AddrUnitext encodes an address of RFC 6533's utf-8 type as
// utf-8-addr-unitext, for 8-bit text (a message/global-delivery-status):
// as EncodeUTF8Addr, but a character outside ASCII stands for itself.
func EncodeUTF8AddrUnitext(s string) string { return encodeUTF8(s, true) }

func encodeUTF8(s string, keepUTF8 bool) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '!' && r <= '~' && r != '+' && r != '=' && r != '\\' || keepUTF8 && r > 0x7f {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, `\x{%02X}`, r)
	}
	return b.String()
}
