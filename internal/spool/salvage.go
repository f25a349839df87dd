package spool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
)

// Salvage: the records after a damaged one. Replay stops at a record that
// fails its checks and keeps the segment in quarantine; the messages
// recorded after the damage were acknowledged all the same, and the
// segment is their only copy. Replay cannot simply skip the damage: the
// checksum does not cover a record's length, so a skip could land inside
// a message's content, which a client wrote, and take bytes shaped as a
// record there for a message nobody sent. So what follows the damage is
// looked for (every place a record could start, kept only where a whole
// record checks out), and each message found is set aside in quarantine,
// its envelope held, never queued: the administrator looks at it (relaykeeper
// queue quarantine) and puts it back (queue restore, then queue release),
// as with any message recovery set aside.

// salvageable is a damaged segment's remains: the records after offset from.
type salvageable struct {
	path string
	from int64
	// sameBoot: written under this boot, so the files of a message in
	// it are as its process left them (replayJournal).
	sameBoot bool
}

// salvageRecords returns the whole records found in data at or after
// offset from, which is where a record failed its checks. A record whose
// LENGTH is what is damaged (its checksum holds up to where another
// record starts: wholeBefore) is taken too, with the length the checksum
// gives. Each record found is skipped whole; a record shaped inside
// another's content is only found when the outer one is not.
//
// Content shaped as many long records' heads would make every place a
// checksum over most of the segment; the checksums are bounded to
// salvageWork times the segment's size, past which the search stops
// (complete reports false) and the rest stays in the segment kept in
// quarantine.
func salvageRecords(data []byte, from int64) (out []*record, complete bool) {
	i := int(from)
	if i < 0 || i > len(data) {
		return nil, true
	}
	budget := salvageWork * (len(data) + 1 + maxPayload/salvageWork)
	if r, n := recordAt(data, i, true, &budget); r != nil {
		out, i = append(out, r), i+n
	} else {
		i++
	}
	for i+recHeadLen <= len(data) {
		j := bytes.Index(data[i:], []byte("RK"))
		if j < 0 {
			break
		}
		i += j
		if budget < 0 {
			return out, false
		}
		if r, n := recordAt(data, i, false, &budget); r != nil {
			out, i = append(out, r), i+n
			continue
		}
		i++
	}
	return out, true
}

// salvageWork bounds the octets salvageRecords checksums, as a multiple of
// the segment's size.
const salvageWork = 8

// recordAt decodes the record at data[i:], returning it and its encoded
// length, or nil. With fixLength, a record whose LENGTH points past where
// its checksum holds is taken with the length that makes it hold, at the
// first place another record could start.
func recordAt(data []byte, i int, fixLength bool, budget *int) (*record, int) {
	rest := data[i:]
	if len(rest) < recHeadLen || rest[0] != 'R' || rest[1] != 'K' || rest[3] != 0 {
		return nil, 0
	}
	typ := rest[2]
	size := int(binary.BigEndian.Uint32(rest[4:]))
	want := binary.BigEndian.Uint32(rest[8:])
	payload := rest[recHeadLen:]
	ok := func(n int) bool {
		if n > len(payload) {
			return false
		}
		*budget -= n
		return crc32.Update(crc32.Checksum([]byte{typ}, crcTable), crcTable, payload[:n]) == want
	}
	if size > maxPayload || !ok(size) {
		if !fixLength {
			return nil, 0
		}
		size = wholeLength(typ, payload, want)
		if size < 0 {
			return nil, 0
		}
	}
	var b []byte
	b = append(b, rest[:recHeadLen]...)
	binary.BigEndian.PutUint32(b[4:], uint32(size))
	b = append(b, payload[:size]...)
	r, err := readRecord(bufio.NewReader(bytes.NewReader(b)), -1)
	if err != nil || r.typ == recHeader {
		return nil, 0
	}
	return r, recHeadLen + size
}

// salvage sets aside in quarantine, held, every message accepted in the
// damaged segments' remains that no record (in any segment replayed) notes
// as removed and that has no files in the spool or the quarantine already.
// It runs before the replay's syncfs, which makes what it writes durable.
//
// It returns the segments of which a message could not be set aside (a
// full disk): they stay in the journal, for the next start to salvage
// again, since no command reads a segment kept in quarantine.
func (s *Spool) salvage(segs []salvageable, done map[string]bool, rep *RecoveryReport) (failed map[string]bool) {
	failed = map[string]bool{}
	for _, sg := range segs {
		data, err := os.ReadFile(sg.path)
		if err != nil {
			s.log.Error("journal: the records after a damaged one could not be read; the segment stays in the journal, and the next start salvages them",
				"segment", sg.path, "err", err)
			failed[sg.path] = true
			continue
		}
		recs, complete := salvageRecords(data, sg.from)
		if !complete {
			s.log.Error("journal: the search for records after a damaged one stopped early (too many places looked like records); the rest is in the segment kept in quarantine",
				"segment", sg.path)
		}
		for _, r := range recs {
			if r.typ == recDone {
				done[r.id] = true
			}
		}
		for _, r := range recs {
			if r.typ != recAccepted && r.typ != recServed || done[r.id] || strings.HasPrefix(r.id, "journal-") {
				continue
			}
			if !sg.sameBoot && s.tornCopy(r) {
				// The record's copy replaces them, held: it was found
				// after a damage, so an administrator checks it.
				held := *r
				held.state = Held
				if !s.restore(&held, false, rep) {
					failed[sg.path] = true
					continue
				}
				s.log.Warn("journal: a message found after a damaged record had files a power loss left torn; written from its record, held",
					"id", r.id, "segment", sg.path)
				continue
			}
			if _, err := s.find(r.id); err == nil || !errors.Is(err, ErrNotFound) || s.InQuarantine(r.id) && !s.halfSetAside(r) {
				continue
			}
			why := fmt.Sprintf("found after a damaged record in journal segment %s; set aside held: check it is mail this relay accepted, then relaykeeper queue restore %s and queue release %s",
				filepath.Base(sg.path), r.id, r.id)
			if err := s.setAside(r); err != nil {
				s.log.Error("journal: a message found after a damaged record could not be set aside; the segment stays in the journal, and the next start sets it aside",
					"id", r.id, "segment", sg.path, "err", err)
				failed[sg.path] = true
				continue
			}
			rep.Quarantined = append(rep.Quarantined, r.id)
			if rep.Reasons == nil {
				rep.Reasons = map[string]string{}
			}
			rep.Reasons[r.id] = why
			s.log.Warn("journal: message found after a damaged record, set aside in quarantine", "id", r.id, "segment", sg.path)
		}
	}
	return failed
}

// tornCopy reports whether the spool holds files of r's message that are
// not whole: its content missing or other than the record's, or its
// envelope missing, still new or unreadable. After a power loss, those are
// what did not reach the disk of a message whose record did.
func (s *Spool) tornCopy(r *record) bool {
	c, cerr := os.ReadFile(s.contentPath(r.id))
	st, ferr := s.find(r.id)
	switch {
	case cerr != nil && ferr != nil:
		return false // no files: set aside as any other
	case cerr != nil || ferr != nil || st == New || !bytes.Equal(c, r.content):
		return true
	}
	_, err := s.readEnvelope(r.id, st)
	return err != nil
}

// halfSetAside reports whether the quarantine holds r's content alone,
// byte for byte: a salvage killed between its two files (setAside writes
// the content first), which is completed. Anything else there (another
// message of that id) is never touched.
func (s *Spool) halfSetAside(r *record) bool {
	q := s.inspectQuarantined(r.id)
	if len(q.Files) != 1 || len(q.States) != 0 || q.Size != int64(len(r.content)) {
		return false
	}
	b, err := os.ReadFile(filepath.Join(s.QuarantinePath(), r.id+".content"))
	return err == nil && bytes.Equal(b, r.content)
}

// setAside writes r's message into the quarantine directory, its envelope
// held, each file under a temporary name first.
func (s *Spool) setAside(r *record) error {
	dir := s.QuarantinePath()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{r.id + ".content", r.content}, {r.id + stateSuffix[Held], r.envelope}} {
		tmp := filepath.Join(dir, "."+f.name+".salvage")
		err := s.writeFile(tmp, f.data, 0o640)
		if err == nil {
			err = os.Rename(tmp, filepath.Join(dir, f.name))
		}
		if err != nil {
			os.Remove(tmp)
			os.Remove(filepath.Join(dir, r.id+".content"))
			return err
		}
	}
	return nil
}
