package config

import (
	"strings"
	"testing"
	"time"
)

// TestFuzz26NestedInlineTables: a value of inline tables nested 50,000
// deep ("x = {a={a=...1}}", 150 KB), which took the TOML parser more than
// 7 GB and minutes, is refused at once with its file and line; braces in
// strings and comments do not count, and a config's own inline tables
// still load.
func TestFuzz26NestedInlineTables(t *testing.T) {
	const n = 50000
	deep := writeFile(t, "# ok\nx = "+strings.Repeat("{a=", n)+"1"+strings.Repeat("}", n)+"\n")
	start := time.Now()
	_, err := Load(deep)
	if err == nil || !strings.Contains(err.Error(), deep+":2: more than 64 inline tables") || time.Since(start) > 5*time.Second {
		t.Errorf("Load of inline tables %d deep: %.300v after %v; want a quick refusal at line 2", n, err, time.Since(start))
	}
	// Closed braces do not add up, however many there are.
	flat := writeFile(t, "[policy.restriction_classes]\n"+
		"c1 = [\"permit\"]\n[log]\nverbose = true\n")
	if _, err := Load(flat); err != nil {
		t.Errorf("Load of a plain config: %v", err)
	}
	braces := strings.Repeat("{", 100)
	fine := writeFile(t, "domain = \""+braces+"\"\n# "+braces+"\n[policy]\nrelay_domains = ['"+braces+"', \"\"\"\n"+braces+"\n\"\"\"]\n")
	if _, err := Load(fine); err != nil && strings.Contains(err.Error(), "inline tables") {
		t.Errorf("braces in strings and comments counted: %v", err)
	}
	many := writeFile(t, "log = { verbose = true }\n"+
		strings.Repeat("# {}\n", 200))
	if _, err := Load(many); err != nil && strings.Contains(err.Error(), "inline tables") {
		t.Errorf("one inline table refused: %v", err)
	}
}

// TestFuzz26SwitchFileLongLine: E-MailRelay's switch file with a line of a
// megabyte is refused with the file and that line's number, not with
// bufio's "token too long" and no line.
func TestFuzz26SwitchFileLongLine(t *testing.T) {
	path := writeFile(t, "as-server\n# comment\nport "+strings.Repeat("9", 1<<20)+"\nverbose\n")
	_, _, err := switchFileArgs(path)
	if err == nil || err.Error() != path+":3: a line longer than 65536 bytes" {
		t.Errorf("switchFileArgs of a file with a megabyte line 3: %v", err)
	}
}

// TestFuzz26SwitchFileManyLines: a switch file of 20,000 lines reads in
// moments (each line's switches were parsed again with every later line:
// minutes), and a refused line among them is still named.
func TestFuzz26SwitchFileManyLines(t *testing.T) {
	many := strings.Repeat("interface 127.0.0.1\n", 20000)
	path := writeFile(t, "as-server\n"+many)
	start := time.Now()
	if _, _, err := switchFileArgs(path); err != nil || time.Since(start) > 10*time.Second {
		t.Errorf("switchFileArgs of 20,001 lines: %v after %v", err, time.Since(start))
	}
	bad := writeFile(t, "as-server\n"+many+"as-proxy smarthost:25\n"+many)
	_, _, err := switchFileArgs(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":20002: ") {
		t.Errorf("switchFileArgs with a second mode at line 20002: %v", err)
	}
}

// TestFuzz26LongDomain: a domain of a megabyte, which named the relay in
// a megabyte-long greeting, is refused at its line, quoted clipped.
func TestFuzz26LongDomain(t *testing.T) {
	path := writeFile(t, "# x\ndomain = \""+strings.Repeat("a", 1<<20)+"\"\n")
	c, err := Load(path)
	if err == nil {
		err = c.Validate()
	}
	if err == nil || len(err.Error()) > 500 || !strings.Contains(err.Error(), path+":2: domain: ") || !strings.Contains(err.Error(), "at most 255") {
		t.Errorf("a megabyte domain: %.300v", err)
	}
	ok := writeFile(t, "domain = \""+strings.Repeat("a.", 127)+"a\"\n")
	if c, err := Load(ok); err != nil || c.Validate() != nil {
		t.Errorf("a 255-byte domain: %v, %v", err, c.Validate())
	}
}
