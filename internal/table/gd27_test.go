package table

import (
	"strings"
	"testing"
)

// TestGd27LongPathCut: a table spec naming a path of a megabyte was
// reported with the system's error, which repeats the whole path: a
// megabyte of "aaa" on the terminal and in the log. The path is cut.
func TestGd27LongPathCut(t *testing.T) {
	long := "/tmp/" + strings.Repeat("a", 1<<20)
	for _, spec := range []string{"hash:" + long, long, "cidr:" + long, "hash:" + long + ".db"} {
		_, err := Open(spec)
		if err == nil || len(err.Error()) > 400 || !strings.HasPrefix(err.Error(), "table: ") {
			n := 0
			if err != nil {
				n = len(err.Error())
			}
			t.Errorf("Open(%.20q...) error of %d bytes; want a message of at most 400", spec, n)
		}
	}
	if _, err := Open("hash:/nonexistent/gd27"); err == nil || err.Error() != "table: open /nonexistent/gd27: no such file or directory" {
		t.Errorf("Open(short) = %v; want the path whole", err)
	}
}
