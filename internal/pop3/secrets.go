package pop3

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/auth"
)

// PlainSecrets are the passwords of a secrets file's "server plain" and
// "server plain:b" lines, by user, for APOP.
//
// APOP (RFC 1939 section 7) compares MD5(timestamp + password) with what
// the client sends, so the server needs the password itself. auth.Secrets
// keeps only HMAC-MD5 states and bcrypt hashes, from which no APOP digest
// can be computed, and exposes no password; so APOP reads the file's plain
// lines again here, and users with md5 or bcrypt lines cannot use APOP
// (they still have USER/PASS and AUTH PLAIN). The file is validated by
// auth.LoadSecrets; lines this reader does not use are skipped.
type PlainSecrets map[string]string

// LoadPlainSecrets reads the plain server secrets of the secrets file at
// path (see package auth for the format).
func LoadPlainSecrets(path string) (PlainSecrets, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pop3: %w", err)
	}
	defer f.Close()
	p := PlainSecrets{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if strings.EqualFold(fields[0], "login") && len(fields) == 4 {
			// E-MailRelay 1.x: "login server USER PASS".
			fields = []string{fields[1], "plain", fields[2], fields[3]}
		}
		if len(fields) != 4 || !strings.EqualFold(fields[0], "server") {
			continue
		}
		var user, pass string
		switch strings.ToLower(fields[1]) {
		case "plain", "login":
			if user, err = auth.DecodeXtext(fields[2]); err != nil {
				continue
			}
			if pass, err = auth.DecodeXtext(fields[3]); err != nil {
				continue
			}
		case "plain:b":
			if user, err = decodeBase64(fields[2]); err != nil {
				continue
			}
			if pass, err = decodeBase64(fields[3]); err != nil {
				continue
			}
		default:
			continue
		}
		if _, dup := p[user]; !dup && user != "" && pass != "" {
			p[user] = pass
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pop3: %s: %w", path, err)
	}
	return p, nil
}

// Secret returns user's password; it is Options.APOPSecret.
func (p PlainSecrets) Secret(user string) (string, bool) {
	s, ok := p[user]
	return s, ok
}

// decodeBase64 accepts padded and unpadded standard base64, as package auth
// does.
func decodeBase64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		var err2 error
		if b, err2 = base64.RawStdEncoding.DecodeString(s); err2 != nil {
			return "", err
		}
	}
	return string(b), nil
}
