package spool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The journal is a sequence of records, each
//
//	"RK" TYPE 0x00   4 bytes
//	LENGTH           uint32, big-endian: bytes of PAYLOAD
//	CRC              uint32, big-endian: CRC-32C of TYPE and PAYLOAD
//	PAYLOAD
//
// of four types:
//
//	'H' header, first in every segment: the kernel's boot id
//	'A' accepted: STATE (1 byte) IDLEN (1 byte) ID ENVLEN (uint32) ENVELOPE CONTENT
//	'S' accepted and served from memory (hot.go), with no files: as 'A'
//	'D' delivered or removed: ID
//
// A record that is cut short or fails its CRC ends the segment: it is the
// torn tail of a write that a crash interrupted, and since a session hears
// 250 only after the record was synced, nobody was told it was accepted.
const (
	recHeader   = 'H'
	recAccepted = 'A'
	recServed   = 'S'
	recDone     = 'D'

	recHeadLen = 12
	// maxPayload bounds what a corrupt LENGTH can make the reader allocate;
	// accepted records are at most journalMaxContent plus an envelope.
	maxPayload = 16 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errTorn is a record that is cut short or does not check out; errCutShort,
// one of them, is a record whose bytes simply end: the usual tail of a
// journal whose writer died in the middle of a write.
var (
	errTorn     = errors.New("torn or corrupt journal record")
	errCutShort = fmt.Errorf("%w: cut short", errTorn)
)

// record is one journal record, decoded.
type record struct {
	typ      byte
	boot     string // recHeader
	id       string // recAccepted, recDone
	state    State  // recAccepted: Ready or Held
	envelope []byte // recAccepted
	content  []byte // recAccepted
	// contentAt and contentLen, when set, supply the content instead
	// (marshalTo reads it from the file into the record).
	contentAt  io.ReaderAt
	contentLen int
	// parts, when set, supply the content in pieces (a served message).
	parts [][]byte
}

// errRecordTooLarge refuses to journal a message whose record would be
// longer than the reader takes (maxPayload).
var errRecordTooLarge = errors.New("spool: journal: record too large for the journal")

// payloadLen is the length of r's encoded payload.
func (r *record) payloadLen() int {
	n := len(r.content) + r.contentLen
	for _, p := range r.parts {
		n += len(p)
	}
	return 6 + len(r.boot) + len(r.id) + len(r.envelope) + n
}

// marshal encodes r.
func (r *record) marshal() []byte {
	b, _ := r.marshalTo(nil)
	return b
}

// marshalTo encodes r into buf's storage (growing it if need be). An
// accepted record whose contentAt is set reads its content from there,
// straight into the record, instead of from content.
func (r *record) marshalTo(buf []byte) ([]byte, error) {
	n := len(r.content)
	if r.contentAt != nil {
		n = r.contentLen
	}
	for _, p := range r.parts {
		n += len(p)
	}
	size := recHeadLen + 6 + len(r.boot) + len(r.id) + len(r.envelope) + n
	b := buf[:0]
	if cap(b) < size {
		b = make([]byte, 0, size)
	}
	b = b[:recHeadLen]
	switch r.typ {
	case recHeader:
		b = append(b, r.boot...)
	case recDone:
		b = append(b, r.id...)
	case recAccepted, recServed:
		b = append(b, byte(r.state), byte(len(r.id)))
		b = append(b, r.id...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.envelope)))
		b = append(b, r.envelope...)
		if r.contentAt != nil {
			start := len(b)
			b = b[:start+n]
			if _, err := r.contentAt.ReadAt(b[start:], 0); err != nil {
				return nil, err
			}
		} else {
			b = append(b, r.content...)
			for _, p := range r.parts {
				b = append(b, p...)
			}
		}
	}
	payload := b[recHeadLen:]
	b[0], b[1], b[2], b[3] = 'R', 'K', r.typ, 0
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	crc := crc32.Update(crc32.Checksum([]byte{r.typ}, crcTable), crcTable, payload)
	binary.BigEndian.PutUint32(b[8:], crc)
	return b, nil
}

// readRecord reads the next record, which starts at offset off of its
// segment (-1: not known). It returns io.EOF at a clean end and errTorn for
// anything else that is not a whole, valid record.
func readRecord(br *bufio.Reader, off int64) (*record, error) {
	var head [recHeadLen]byte
	n, err := io.ReadFull(br, head[:])
	if n == 0 && err == io.EOF {
		return nil, io.EOF
	}
	if zeros(head[:n]) {
		// Where a segment's records end, its preallocated zeros begin.
		if !zeroToEnd(br) {
			return nil, fmt.Errorf("%w: zeros before more data", errTorn)
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, errCutShort
	}
	// A head that straddles a sector boundary, whose sectors from that
	// boundary on a crash did not write, ends in zeros with only zeros
	// after it: the torn tail, like a payload cut short (tornInZeros).
	headZeros := off + int64(len(bytes.TrimRight(head[:], "\x00")))
	if head[0] != 'R' || head[1] != 'K' || head[3] != 0 {
		if tornInZeros(headZeros, off+recHeadLen, off >= 0) && zeroToEnd(br) {
			return nil, errCutShort
		}
		return nil, fmt.Errorf("%w: bad magic", errTorn)
	}
	typ := head[2]
	size := binary.BigEndian.Uint32(head[4:])
	if size > maxPayload {
		if tornInZeros(headZeros, off+recHeadLen, off >= 0) && zeroToEnd(br) {
			return nil, errCutShort
		}
		return nil, fmt.Errorf("%w: length %d", errTorn, size)
	}
	payload := make([]byte, size)
	want := binary.BigEndian.Uint32(head[8:])
	n, err = io.ReadFull(br, payload)
	if err == nil && crc32.Update(crc32.Checksum([]byte{typ}, crcTable), crcTable, payload) != want {
		// In a preallocated segment a record that a crash cut short
		// ends in the zeros that the lost sectors still hold, instead
		// of at the end of the file.
		// The zeros may start in the head (its CRC, its LENGTH).
		from := off + recHeadLen + int64(len(bytes.TrimRight(payload, "\x00")))
		if from == off+recHeadLen {
			from = headZeros
		}
		if !tornInZeros(from, off+recHeadLen+int64(size), off >= 0) || !zeroToEnd(br) {
			return nil, fmt.Errorf("%w: checksum", errTorn)
		}
		// All of the payload: wholeLength tries the ends within its
		// trailing zeros, which may be the content's own (a damaged
		// LENGTH that points into the segment's zeros).
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		if wholeBefore(typ, payload[:n], want) {
			return nil, fmt.Errorf("%w: length %d past the end of a whole record", errTorn, size)
		}
		return nil, errCutShort
	}
	r := &record{typ: typ}
	switch typ {
	case recHeader:
		r.boot = string(payload)
	case recDone:
		r.id = string(payload)
		if !ValidID(r.id) {
			return nil, fmt.Errorf("%w: bad id", errTorn)
		}
	case recAccepted, recServed:
		if len(payload) < 2 {
			return nil, fmt.Errorf("%w: short accepted record", errTorn)
		}
		r.state = State(payload[0])
		idLen := int(payload[1])
		rest := payload[2:]
		if len(rest) < idLen+4 {
			return nil, fmt.Errorf("%w: short accepted record", errTorn)
		}
		r.id, rest = string(rest[:idLen]), rest[idLen:]
		envLen := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(envLen) > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: envelope length", errTorn)
		}
		r.envelope, r.content = rest[:envLen], rest[envLen:]
		if !ValidID(r.id) || (r.state != Ready && r.state != Held) {
			return nil, fmt.Errorf("%w: bad id or state", errTorn)
		}
	default:
		return nil, fmt.Errorf("%w: type %q", errTorn, typ)
	}
	return r, nil
}

// wholeBefore reports whether a record whose LENGTH points past the end
// of its segment is whole all the same: its CRC checks out over the
// bytes up to where a record's magic starts, or up to the end. Then its
// LENGTH is damaged: the record was written and synced (and so may be
// those after it), not the tail of a write a crash cut short, and it
// must not be dropped quietly as one. The CRC is taken once over the
// bytes, checked at each place the record could end.
func wholeBefore(typ byte, avail []byte, want uint32) bool {
	return wholeLength(typ, avail, want) >= 0
}

// wholeLength is the length of payload at which a record's checksum holds,
// at a place a record could end (before "RK", or at the end), or -1.
//
// In a preallocated segment the last record is followed by zeros, not by
// the end: the places within the first zeroRun of those zeros count too
// (a content may end in zero bytes).
func wholeLength(typ byte, payload []byte, want uint32) int {
	crc := crc32.Checksum([]byte{typ}, crcTable)
	nz := len(bytes.TrimRight(payload, "\x00"))
	done := 0
	for {
		k := bytes.Index(payload[done:nz], []byte("RK"))
		end := len(payload)
		if k >= 0 {
			end = done + k
		} else if nz < len(payload) {
			crc = crc32.Update(crc, crcTable, payload[done:nz])
			for at := nz; at <= min(len(payload), nz+zeroRun); at++ {
				if crc == want {
					return at
				}
				if at < len(payload) {
					crc = crc32.Update(crc, crcTable, payload[at:at+1])
				}
			}
			return -1
		}
		crc = crc32.Update(crc, crcTable, payload[done:end])
		if crc == want {
			return end
		}
		if k < 0 {
			return -1
		}
		crc = crc32.Update(crc, crcTable, payload[end:end+2])
		done = end + 2
	}
}

// zeroRun bounds the zero bytes at the end of a record's content that
// wholeLength finds it whole with, after a damaged LENGTH.
const zeroRun = 64 << 10

// zeros reports whether b is all zero bytes.
func zeros(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// tornInZeros says whether zeros from offset from to end of a segment can be
// sectors a crash did not write: they hold a sector's start. Zeros that
// hold none are the record's own bytes, and the record is damaged.
func tornInZeros(from, end int64, known bool) bool {
	const sector = 512
	return known && from < end && (from%sector == 0 || from/sector < (end-1)/sector)
}

// zeroToEnd reads br to its end and reports whether all it held was zeros.
func zeroToEnd(br *bufio.Reader) bool {
	for {
		b, err := br.Peek(br.Buffered())
		if !zeros(b) {
			return false
		}
		br.Discard(len(b))
		if err != nil {
			return true
		}
		if _, err := br.Peek(1); err != nil {
			return true
		}
	}
}
