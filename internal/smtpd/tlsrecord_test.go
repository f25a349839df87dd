package smtpd

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// chunkConn returns its input in reads of the sizes given, in turn.
type chunkConn struct {
	net.Conn
	in    []byte
	sizes []int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.in), c.sizes[0])
	c.sizes = append(c.sizes[1:], c.sizes[0])
	copy(p, c.in[:n])
	c.in = c.in[n:]
	return n, nil
}

// TestRevBB3RecordConn: recordConn hands on the whole stream, never more
// than the rest of one record per read, and counts what it read beyond as
// buffered, however the socket's reads cut the records.
func TestRevBB3RecordConn(t *testing.T) {
	record := func(n int) []byte {
		return append([]byte{23, 3, 3, byte(n >> 8), byte(n)}, bytes.Repeat([]byte{'x'}, n)...)
	}
	var in []byte
	var ends []int // offsets where records end
	for _, n := range []int{6, 0, 300, 1, 20000} {
		in = append(in, record(n)...)
		ends = append(ends, len(in))
	}
	for _, sizes := range [][]int{{1}, {3, 7}, {5}, {17000}, {1 << 20}} {
		rc := newRecordConn(&chunkConn{in: in, sizes: sizes})
		var got []byte
		p := make([]byte, 40000)
		for {
			n, err := rc.Read(p)
			for _, e := range ends {
				if len(got) < e && len(got)+n > e {
					t.Fatalf("reads of %v: a read of %d at %d crosses the record end at %d", sizes, n, len(got), e)
				}
			}
			got = append(got, p[:n]...)
			if len(got) < len(in) && rc.buffered() != len(in)-len(got)-len(rc.Conn.(*chunkConn).in) {
				t.Fatalf("reads of %v: buffered %d", sizes, rc.buffered())
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, in) {
			t.Errorf("reads of %v: the stream changed", sizes)
		}
	}
}
