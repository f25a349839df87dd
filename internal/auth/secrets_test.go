package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
)

// testHash is a bcrypt hash at the lowest cost, to keep tests quick.
func testHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func mustParse(t *testing.T, text string) *Secrets {
	t.Helper()
	s, err := parseSecrets("secrets", strings.NewReader(text))
	if err != nil {
		t.Fatalf("parseSecrets: %v", err)
	}
	return s
}

func TestMD5State(t *testing.T) {
	keys := []string{"", "a", "tanstaaftanstaaf", strings.Repeat("k", 64), strings.Repeat("long", 40)}
	msgs := []string{"", "<1896.697170952@postoffice.reston.mci.net>", strings.Repeat("m", 200)}
	for _, k := range keys {
		st := maskKey([]byte(k))
		for _, m := range msgs {
			h := hmac.New(md5.New, []byte(k))
			h.Write([]byte(m))
			want := h.Sum(nil)
			got := st.hmac([]byte(m))
			if !hmac.Equal(got[:], want) {
				t.Errorf("masked HMAC-MD5(%q, %q) = %x; want %x", k, m, got, want)
			}
		}
		b64, err := parseMD5State(MD5State(k))
		if err != nil || b64 != st {
			t.Errorf("parseMD5State(MD5State(%q)) = %x, %v; want %x", k, b64, err, st)
		}
		var words []string
		for i := 0; i < 8; i++ {
			words = append(words, fmt.Sprint(binary.LittleEndian.Uint32(st[4*i:])))
		}
		dotted, err := parseMD5State(strings.Join(words, "."))
		if err != nil || dotted != st {
			t.Errorf("parseMD5State(dotted %q) = %x, %v; want %x", k, dotted, err, st)
		}
	}
	if got := MD5State("x"); len(got) != 44 {
		t.Errorf("MD5State is %d characters; want 44, the base64 of 32 bytes", len(got))
	}
}

// TestRFC2195 is the example exchange of RFC 2195 section 2.
func TestRFC2195(t *testing.T) {
	st := maskKey([]byte("tanstaaftanstaaf"))
	mac := st.hmac([]byte("<1896.697170952@postoffice.reston.mci.net>"))
	if got, want := fmt.Sprintf("%x", mac), "b913a602c7eda7a495b4e6e7334d3890"; got != want {
		t.Errorf("HMAC-MD5 = %s; want %s", got, want)
	}
}

func TestParseGood(t *testing.T) {
	bob := testHash(t, "bobpw")
	text := strings.Join([]string{
		"# comment",
		"",
		"   # indented comment",
		"server plain alice p+3Dss",
		"SERVER PLAIN:B " + b64("carol") + " " + b64("carol pw"),
		"server bcrypt bob " + bob,
		"server md5 dave " + MD5State("davepw"),
		"server cram-md5 erin " + MD5State("erinpw"),
		"login server frank frankpw",
		"server login gina ginapw",
		"server none 192.168.0.0/24 lan",
		"server none 10.1.*.* ten",
		"server none fd00::/8 ula",
		"server none 127.0.0.1 loopback",
		"client plain user+40gmail.com app-password",
		"client plain:b " + b64("u2") + " " + b64("p w") + " second",
		"client plain = = direct",
		"client oauth me@example.com ya29.token third",
		"client md5 m " + MD5State("mpw") + " fourth",
		"\tclient\tplain\tx\ty\tfifth\t",
	}, "\n")
	s := mustParse(t, text)
	users := map[string]secretKind{}
	for name, u := range s.users {
		users[name] = u.kind
	}
	wantUsers := map[string]secretKind{
		"alice": kindPlain, "carol": kindPlain, "bob": kindBcrypt, "dave": kindMD5,
		"erin": kindMD5, "frank": kindPlain, "gina": kindPlain,
	}
	if diff := cmp.Diff(wantUsers, users); diff != "" {
		t.Errorf("server users (-want +got):\n%s", diff)
	}
	clients := map[string]string{}
	for sel, c := range s.clients {
		clients[sel] = fmt.Sprintf("%d %s %s", c.kind, c.user, c.password)
	}
	wantClients := map[string]string{
		"":       fmt.Sprintf("%d user@gmail.com app-password", kindPlain),
		"second": fmt.Sprintf("%d u2 p w", kindPlain),
		"direct": fmt.Sprintf("%d  ", kindNone),
		"third":  fmt.Sprintf("%d me@example.com ya29.token", kindOAuth),
		"fourth": fmt.Sprintf("%d m ", kindMD5),
		"fifth":  fmt.Sprintf("%d x y", kindPlain),
	}
	if diff := cmp.Diff(wantClients, clients); diff != "" {
		t.Errorf("client lines (-want +got):\n%s", diff)
	}
	if !s.HasServer() || !s.HasClient() {
		t.Errorf("HasServer, HasClient = %v, %v; want true, true", s.HasServer(), s.HasClient())
	}
	if s.bcryptCost != bcrypt.MinCost {
		t.Errorf("bcryptCost = %d; want %d", s.bcryptCost, bcrypt.MinCost)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseBad(t *testing.T) {
	hash := testHash(t, "x")
	tests := []struct {
		line, want string
	}{
		{"server plain alice", "secrets:1: too few fields: want server TYPE USER SECRET"},
		{"server plain alice pw sel", "secrets:1: too many fields: want server TYPE USER SECRET (selectors are for client lines)"},
		{"client plain alice", "secrets:1: too few fields: want client TYPE USER SECRET [SELECTOR]"},
		{"client plain a b c d", "secrets:1: too many fields: want client TYPE USER SECRET [SELECTOR]"},
		{"sever plain a b", `secrets:1: unknown first word "sever": want server or client`},
		{"login server a", "secrets:1: want login server USER PASSWORD or login client USER PASSWORD"},
		{"login sever a b", `secrets:1: unknown first word "sever": want server or client`},
		{"server plain al=ce pw", "secrets:1: invalid xtext in user: '=' must be written +3D"},
		{"server plain alice p+zz", "secrets:1: invalid xtext in password: '+' must be followed by two upper-case hex digits"},
		{"server plain:b !!! " + b64("p"), "secrets:1: invalid base64 in user: illegal base64 data at input byte 0"},
		{"server plain:b " + b64("u") + " ***", "secrets:1: invalid base64 in password: illegal base64 data at input byte 0"},
		{"server md5 alice abc", "secrets:1: invalid md5 state: want the base64 of 32 bytes, as emailrelay-passwd or relaykeeper passwd --md5 prints"},
		{"server md5 alice 1.2.3.4.5.6.7.99999999999", "secrets:1: invalid md5 state: a dotted state is eight decimal numbers below 2^32"},
		{"server bcrypt alice $2a$10$short", "secrets:1: invalid bcrypt hash: want $2a$, $2b$ or $2y$, a two-digit cost and 53 characters, as relaykeeper passwd prints"},
		{"server bcrypt alice $2a$99$" + hash[7:], "secrets:1: invalid bcrypt hash: crypto/bcrypt: cost 99 is outside allowed inclusive range 4..31"},
		{"server oauth alice tok", "secrets:1: oauth is for client lines"},
		{"server sha1 alice x", `secrets:1: unsupported password type "sha1": want plain, plain:b, md5, bcrypt or none`},
		{"server none 192.168.0.0/33 lan", `secrets:1: invalid address prefix "192.168.0.0/33": want an address, a CIDR prefix like 192.168.0.0/24 or fd00::/8, or a wildcard like 192.168.0.*`},
		{"server none 192.168.0 lan", `secrets:1: invalid address "192.168.0": want an address, a CIDR prefix like 192.168.0.0/24 or fd00::/8, or a wildcard like 192.168.0.*`},
		{"server none 10.*.0.1 x", `secrets:1: invalid wildcard "10.*.0.1": want four dotted parts with '*' only at the end, like 192.168.0.* or 10.*.*.*`},
		{"server none 10.0.* x", `secrets:1: invalid wildcard "10.0.*": want four dotted parts with '*' only at the end, like 192.168.0.* or 10.*.*.*`},
		{"server none 256.*.*.* x", `secrets:1: invalid wildcard "256.*.*.*": want four dotted parts with '*' only at the end, like 192.168.0.* or 10.*.*.*`},
		{"server none fe80::*  x", `secrets:1: invalid wildcard "fe80::*": want four dotted parts with '*' only at the end, like 192.168.0.* or 10.*.*.*`},
		{"server none ::ffff:10.0.0.0/8 x", `secrets:1: invalid address prefix "::ffff:10.0.0.0/8": an IPv4-mapped prefix needs at least 96 bits`},
		{"client bcrypt alice " + hash, "secrets:1: bcrypt is for server lines: a client needs the password itself"},
		{"client none 1.2.3.4 x", "secrets:1: none is for server lines; for no AUTH write client plain = = SELECTOR"},
		{"client plain:b = x", "secrets:1: invalid base64 in user: illegal base64 data at input byte 0"},
		{"client plain:b " + b64("u") + " =", "secrets:1: invalid base64 in password: illegal base64 data at input byte 0"},
		{"client apop alice " + MD5State("x") + " s\nclient xoauth a b", `secrets:2: unsupported password type "xoauth": want plain, plain:b, md5, oauth, oauth:b or oauth2`},
		{"server plain alice a\nserver bcrypt alice " + hash, `secrets:2: duplicate server secret for user "alice" (first on line 1)`},
		{"client plain a b\nclient plain c d", "secrets:2: duplicate default client secret (first on line 1)"},
		{"client plain a b s\nclient plain:b = = s", `secrets:2: duplicate client secret for selector "s" (first on line 1)`},
		{"server none 192.168.0.* a\nserver none 192.168.0.0/24 b", "secrets:2: duplicate trusted address 192.168.0.0/24 (first on line 1)"},
		{strings.Repeat("x", 70<<10), "secrets:1: the line is longer than 64 KiB: no entry is that long"},
	}
	for _, tt := range tests {
		_, err := parseSecrets("secrets", strings.NewReader(tt.line))
		if err == nil || err.Error() != tt.want {
			t.Errorf("parseSecrets(%.60q) error = %v; want %q", tt.line, err, tt.want)
		}
	}
}

func TestLoadSecretsReportsEveryLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.secrets")
	text := "server plain alice pw\nbogus line here x\n# fine\nserver plain bob\nclient plain a b\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSecrets(path)
	want := path + `:2: unknown first word "bogus": want server or client` + "\n" +
		path + ":4: too few fields: want server TYPE USER SECRET"
	if err == nil || err.Error() != want {
		t.Errorf("LoadSecrets error = %v; want\n%s", err, want)
	}
	if _, err := LoadSecrets(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.HasPrefix(err.Error(), "auth: open ") {
		t.Errorf("LoadSecrets(missing) error = %v; want auth: open ...", err)
	}
}

func TestHasServerClient(t *testing.T) {
	tests := []struct {
		text           string
		server, client bool
	}{
		{"", false, false},
		{"server none 127.0.0.1 x", true, false},
		{"server plain a b", true, false},
		{"client plain a b", false, true},
		{"login client a b\nlogin server c d", true, true},
	}
	for _, tt := range tests {
		s := mustParse(t, tt.text)
		if s.HasServer() != tt.server || s.HasClient() != tt.client {
			t.Errorf("%q: HasServer, HasClient = %v, %v; want %v, %v", tt.text, s.HasServer(), s.HasClient(), tt.server, tt.client)
		}
	}
}

// TestParseOldOrder: E-MailRelay 1.x wrote the mechanism first; its user
// guide's "NONE server *.*.*.* x" (seed 001) must work as written.
func TestParseOldOrder(t *testing.T) {
	s := mustParse(t, strings.Join([]string{
		"NONE server *.*.*.* x",
		"CRAM-MD5 server erin " + MD5State("erinpw"),
		"APOP server fred fredpw",
		"LOGIN server gina ginapw",
		"LOGIN client me@example.com secret",
	}, "\n"))
	if kw, ok := s.Trusted(netip.MustParseAddr("203.0.113.9")); !ok || kw != "x" {
		t.Errorf("Trusted(203.0.113.9) = %q, %v; want x, true", kw, ok)
	}
	for user, kind := range map[string]secretKind{"erin": kindMD5, "fred": kindPlain, "gina": kindPlain} {
		if u, ok := s.users[user]; !ok || u.kind != kind {
			t.Errorf("user %s: %+v, %v; want kind %d", user, u, ok, kind)
		}
	}
	if c, ok := s.clients[""]; !ok || c.user != "me@example.com" || c.password != "secret" {
		t.Errorf("client line: %+v, %v; want me@example.com secret", c, ok)
	}
}

func TestTrusted(t *testing.T) {
	s := mustParse(t, strings.Join([]string{
		"server none 192.168.0.0/16 wide",
		"server none 192.168.1.* narrow",
		"server none 192.168.1.7 host",
		"server none 10.*.*.* ten",
		"server none 172.16.5.9/12 masked",
		"server none 2001:db8::/32 doc6",
		"server none 2001:db8:1::/48 doc6narrow",
		"server none ::1 lo6",
		"server none ::ffff:100.64.0.0/106 cgnat",
	}, "\n"))
	tests := []struct {
		ip, keyword string
		ok          bool
	}{
		{"192.168.2.1", "wide", true},
		{"192.168.1.1", "narrow", true},
		{"192.168.1.7", "host", true},
		{"::ffff:192.168.1.7", "host", true},
		{"10.200.0.1", "ten", true},
		{"172.31.255.255", "masked", true},
		{"172.32.0.0", "", false},
		{"2001:db8:2::1", "doc6", true},
		{"2001:db8:1:5::1", "doc6narrow", true},
		{"::1", "lo6", true},
		{"fe80::1%eth0", "", false},
		{"100.127.0.1", "cgnat", true},
		{"127.0.0.1", "", false},
		{"11.0.0.1", "", false},
	}
	for _, tt := range tests {
		kw, ok := s.Trusted(netip.MustParseAddr(tt.ip))
		if kw != tt.keyword || ok != tt.ok {
			t.Errorf("Trusted(%s) = %q, %v; want %q, %v", tt.ip, kw, ok, tt.keyword, tt.ok)
		}
	}
}

func TestMechanisms(t *testing.T) {
	hash := testHash(t, "x")
	tests := []struct {
		text          string
		tls, insecure bool
		want          []string
	}{
		{"server plain a b", true, false, []string{"PLAIN", "LOGIN", "CRAM-MD5"}},
		{"server plain a b\nserver md5 c " + MD5State("d"), true, false, []string{"PLAIN", "LOGIN", "CRAM-MD5"}},
		{"server plain a b\nserver bcrypt c " + hash, true, false, []string{"PLAIN", "LOGIN"}},
		{"server plain a b", false, false, nil},
		{"server plain a b", false, true, []string{"PLAIN", "LOGIN", "CRAM-MD5"}},
		{"server none 127.0.0.1 x\nclient plain a b", true, true, nil},
	}
	for _, tt := range tests {
		got := mustParse(t, tt.text).Mechanisms(tt.tls, tt.insecure)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%q: Mechanisms(%v, %v) (-want +got):\n%s", tt.text, tt.tls, tt.insecure, diff)
		}
	}
}

// apopCase is a user and the APOP secret wanted for it; ok false wants
// none.
type apopCase struct {
	user, want string
	ok         bool
}

// wantAPOPSecrets checks s.APOPSecret for each case.
func wantAPOPSecrets(t *testing.T, s *Secrets, cases []apopCase) {
	t.Helper()
	for _, tt := range cases {
		if got, ok := s.APOPSecret(tt.user); got != tt.want || ok != tt.ok {
			t.Errorf("APOPSecret(%q) = %q, %v; want %q, %v", tt.user, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAPOPSecret(t *testing.T) {
	s := mustParse(t, `# comment
server plain alice sec+20ret
server plain:b Ym9i aHVudGVyMg==
SERVER PLAIN carol one
server md5 dave 8.7.6.5.4.3.2.1
server bcrypt erin $2a$10$0Sb11u/hI/9JLimz0tIKVeqHIb3q4ur.rq3powXURHJMnet1iIXmy
client plain frank pw
login server gina pw2
server none 127.0.0.1 local
`)
	wantAPOPSecrets(t, s, []apopCase{
		{"alice", "sec ret", true},
		{"bob", "hunter2", true},
		{"carol", "one", true},
		{"gina", "pw2", true},
		{"dave", "", false},  // an HMAC-MD5 state: no password
		{"erin", "", false},  // a bcrypt hash: no password
		{"frank", "", false}, // a client line
		{"nobody", "", false},
	})
}

// TestOldMechanismFirstLines: E-MailRelay 1.x's "MECHANISM SIDE USER SECRET"
// lines, as the E-MailRelay user guide's POP example has them ("APOP server
// user1 password1") and its "NONE server *.*.*.* x", are read.
func TestOldMechanismFirstLines(t *testing.T) {
	s := mustParse(t, `APOP server user1 password1
apop server user2 pass+20word
CRAM-MD5 server carol carolpw
CRAM-MD5 server dave `+MD5State("davepw")+`
LOGIN server erin erinpw
NONE server *.*.*.* x
LOGIN client me@example.com mypassword
`)
	wantAPOPSecrets(t, s, []apopCase{
		{"user1", "password1", true},
		{"user2", "pass word", true},
		{"carol", "carolpw", true},
		{"erin", "erinpw", true},
		{"dave", "", false}, // a masked CRAM-MD5 secret: no password
	})
	if _, ok := s.Trusted(netip.MustParseAddr("203.0.113.9")); !ok {
		t.Errorf("NONE server *.*.*.* x does not trust 203.0.113.9")
	}
	if !s.HasClient() {
		t.Errorf("LOGIN client line not read")
	}
}
