// Package dkim signs messages with DKIM (RFC 6376), for mail relaykeeper
// sends in its own name (bounces, delay warnings, encapsulated copies) and,
// as a filter, for relayed mail when no OpenDKIM milter does it.
//
// Signatures are rsa-sha256 or ed25519-sha256 (RFC 8463), with relaxed
// header and body canonicalization, over the header fields of RFC 6376
// 5.4.1 that the message has, plus one more From than it has, so that a
// second From cannot be added without breaking the signature. Received and
// Return-Path, which change in transit, are never signed.
package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// signedFields are the header fields signed when present (RFC 6376 5.4.1,
// and the MIME fields that change how the body reads).
var signedFields = []string{
	"From", "Sender", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-ID",
	"Content-Description", "Resent-Date", "Resent-From", "Resent-Sender",
	"Resent-To", "Resent-Cc", "Resent-Message-ID", "In-Reply-To", "References",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post",
	"List-Subscribe", "List-Post", "List-Owner", "List-Archive",
}

// Signer signs messages for one domain with one key. It is safe for
// concurrent use.
type Signer struct {
	domain   string
	selector string
	keyFile  string
	key      crypto.Signer
}

// LoadSigner reads a private key for signing as domain (d=) with selector
// (s=), whose public key is published at SELECTOR._domainkey.DOMAIN. The
// key file is PEM: "RSA PRIVATE KEY" (PKCS #1, as older opendkim-genkey
// writes) or "PRIVATE KEY" (PKCS #8) holding an RSA key of at least 1024
// bits (RFC 8301) or an Ed25519 key.
func LoadSigner(domain, selector, keyFile string) (*Signer, error) {
	domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	selector = strings.TrimSpace(selector)
	if !ValidName(domain) {
		return nil, fmt.Errorf("dkim: bad domain %q", domain)
	}
	if !ValidName(selector) {
		return nil, fmt.Errorf("dkim: bad selector %q", selector)
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("dkim: key file: %w", err)
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("dkim: key file %s: %w", keyFile, err)
	}
	return &Signer{domain: domain, selector: selector, keyFile: keyFile, key: key}, nil
}

// ValidName reports whether s is a plausible domain name or selector:
// dot-separated labels of letters, digits, hyphens and underscores.
func ValidName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key in it")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 1024 {
			return nil, fmt.Errorf("RSA key of %d bits: DKIM needs at least 1024 (RFC 8301)", k.N.BitLen())
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T: want RSA or Ed25519", key)
}

// Domain is the signing domain, d=.
func (s *Signer) Domain() string { return s.domain }

// Sign writes the message read from r to w with a DKIM-Signature field
// before it. The message is read twice if r is an io.ReadSeeker (a file),
// and held in memory otherwise.
func (s *Signer) Sign(r io.Reader, w io.Writer) error {
	var again io.Reader
	var info *headerInfo
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("dkim: %w", err)
		}
		var sig string
		if sig, info, err = s.signature(rs); err != nil {
			return err
		}
		if _, err := rs.Seek(start, io.SeekStart); err != nil {
			return fmt.Errorf("dkim: %w", err)
		}
		if _, err := io.WriteString(w, sig); err != nil {
			return err
		}
		again = rs
	} else {
		var buf bytes.Buffer
		sig, inf, err := s.signature(io.TeeReader(r, &buf))
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, sig); err != nil {
			return err
		}
		again, info = &buf, inf
	}
	return info.copySigned(w, again)
}

// copySigned copies the message read from r to w as it was signed: with
// the empty line that ends the header section where the message had none.
func (info *headerInfo) copySigned(w io.Writer, r io.Reader) error {
	if _, err := io.CopyN(w, r, info.headLen); err != nil {
		return err
	}
	if _, err := io.WriteString(w, info.sep); err != nil {
		return err
	}
	_, err := io.Copy(w, r)
	return err
}

// Signature returns the DKIM-Signature field for the message read from r:
// name, folded value and final CRLF.
func (s *Signer) Signature(r io.Reader) (string, error) {
	sig, _, err := s.signature(r)
	return sig, err
}

// errNoFrom is a message that cannot be signed: RFC 6376 5.4 requires From
// to be signed.
var errNoFrom = errors.New("dkim: message has no From field")

// signature reads the whole message from r and returns its signature and
// what the header section says, for the filter.
func (s *Signer) signature(r io.Reader) (string, *headerInfo, error) {
	br := bufio.NewReaderSize(r, 32<<10)
	head, info, err := readHeader(br)
	if err != nil {
		return "", nil, fmt.Errorf("dkim: read message: %w", err)
	}
	if info.from == "" {
		return "", info, errNoFrom
	}
	keys := []string{"From"} // the extra From: see the package doc
	for _, name := range info.names {
		for _, f := range signedFields {
			if strings.EqualFold(name, f) {
				keys = append(keys, f)
			}
		}
	}
	ds, err := dkim.NewSigner(&dkim.SignOptions{
		Domain:                 s.domain,
		Selector:               s.selector,
		Signer:                 s.key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             keys,
	})
	if err != nil {
		return "", nil, fmt.Errorf("dkim: %w", err)
	}
	defer ds.Close()
	if _, err := ds.Write(head); err != nil {
		return "", nil, fmt.Errorf("dkim: %w", err)
	}
	if _, err := io.WriteString(ds, info.sep); err != nil {
		return "", nil, fmt.Errorf("dkim: %w", err)
	}
	if _, err := io.Copy(ds, br); err != nil {
		return "", nil, fmt.Errorf("dkim: read message: %w", err)
	}
	if err := ds.Close(); err != nil {
		return "", nil, fmt.Errorf("dkim: %w", err)
	}
	return ds.Signature(), info, nil
}

// headerInfo is what the signer needs to know of a header section.
type headerInfo struct {
	// headLen is the length of the header section as readHeader read it;
	// sep is what the message needs after it to end the header section
	// with an empty line: "" when it has one, a line break or two when it
	// ends at the end of the message or at a line that is not a field
	// (without it, the signer could not read the header and the message
	// was never signed, nor sent).
	headLen int64
	sep     string
	names   []string // field names in order
	from    string   // the first From field's value, unfolded
	sigs    []string // DKIM-Signature values, unfolded
	ended   bool     // the header section ends in an empty line
}

// done sets headLen and sep for the header section head.
func (info *headerInfo) done(head []byte) ([]byte, *headerInfo, error) {
	info.headLen = int64(len(head))
	switch eol := "\r\n"; {
	case info.ended || len(head) == 0:
	case bytes.HasSuffix(head, []byte("\n")):
		if !bytes.HasSuffix(head, []byte("\r\n")) {
			eol = "\n"
		}
		info.sep = eol
	default:
		info.sep = eol + eol
	}
	return head, info, nil
}

// readHeader reads the header section, up to and including the empty line
// that ends it (or the first line that is not a field, which it keeps), and
// returns its bytes as they were.
func readHeader(br *bufio.Reader) ([]byte, *headerInfo, error) {
	var head bytes.Buffer
	info := &headerInfo{}
	var cur *string // the value being unfolded
	// The continuation lines of cur, joined to it when the field ends:
	// appending each to the string took time quadratic in a field's
	// lines, and a client writes the From field.
	var more []string
	flush := func() {
		if cur != nil && len(more) > 0 {
			*cur += " " + strings.Join(more, " ")
		}
		more = more[:0]
	}
	for {
		if peek, _ := br.Peek(1); len(peek) == 1 && (peek[0] == ' ' || peek[0] == '\t') && len(info.names) > 0 {
			line, err := br.ReadBytes('\n')
			head.Write(line)
			if cur != nil {
				more = append(more, strings.TrimSpace(string(line)))
			}
			if err == io.EOF {
				flush()
				return info.done(head.Bytes())
			} else if err != nil {
				return nil, nil, err
			}
			continue
		}
		flush()
		peek, _ := br.Peek(1000)
		line := peek
		if i := bytes.IndexByte(peek, '\n'); i >= 0 {
			line = peek[:i+1]
		}
		if len(line) == 0 || string(line) == "\n" || string(line) == "\r\n" {
			// The empty line, or the end of the message. Not a line
			// of CRs alone ("\r\r\n"): the signer's parser does not
			// take that for the empty line, and the body starts
			// there.
			n, _ := br.Discard(len(line))
			head.Write(line[:n])
			info.ended = bytes.HasSuffix(line[:n], []byte("\n"))
			return info.done(head.Bytes())
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || bytes.ContainsAny(bytes.TrimRight(line[:colon], " \t"), " \t") {
			return info.done(head.Bytes()) // the body starts here
		}
		full, err := br.ReadBytes('\n')
		head.Write(full)
		name := string(bytes.TrimRight(full[:colon], " \t"))
		value := strings.TrimSpace(string(full[colon+1:]))
		info.names = append(info.names, name)
		cur = nil
		switch {
		case strings.EqualFold(name, "From") && info.from == "":
			info.from = value
			cur = &info.from
		case strings.EqualFold(name, "DKIM-Signature"):
			info.sigs = append(info.sigs, value)
			cur = &info.sigs[len(info.sigs)-1]
		}
		if err == io.EOF {
			return info.done(head.Bytes())
		} else if err != nil {
			return nil, nil, err
		}
	}
}
