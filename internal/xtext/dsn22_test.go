package xtext

import "testing"

// TestDsn22EncodeUTF8AddrUnitext: utf-8-addr-unitext (RFC 6533 section 3)
// keeps characters outside ASCII as they are and writes ASCII controls,
// the blank, DEL, '\', '+' and '=' as \x{HEX}, as utf-8-addr-xtext does.
func TestDsn22EncodeUTF8AddrUnitext(t *testing.T) {
	const in = "j\u00fcrgen+a=b\\c d\x01\x7f@\u4f8b.jp"
	if got, want := EncodeUTF8AddrUnitext(in), `j`+"\u00fc"+`rgen\x{2B}a\x{3D}b\x{5C}c\x{20}d\x{01}\x{7F}@`+"\u4f8b"+`.jp`; got != want {
		t.Errorf("EncodeUTF8AddrUnitext(%q) = %q; want %q", in, got, want)
	}
	if got, want := EncodeUTF8Addr(in), `j\x{FC}rgen\x{2B}a\x{3D}b\x{5C}c\x{20}d\x{01}\x{7F}@\x{4F8B}.jp`; got != want {
		t.Errorf("EncodeUTF8Addr(%q) = %q; want %q", in, got, want)
	}
}
