package spool

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
)

// Journalled is a message that a journal segment accepted and did not note
// done, and that has no envelope in the spool: a relay that died held it
// only in its journal, and the next replay (a relay's start, --as-client)
// writes it out.
type Journalled struct {
	Env   *Envelope
	State State // Ready or Held, once written out
	Size  int64
}

// JournalOnly reads the journal segments, without locking them, for the
// messages they alone hold. Only for a spool no relay is running on (the
// queue commands check the pid file): a live relay's messages served from
// its journal would be read while it changes them. A segment's torn tail
// ends its reading, as in replay.
func (s *Spool) JournalOnly() ([]Journalled, error) {
	accepted := map[string]*record{}
	var order []string
	for _, name := range s.segments() {
		f, err := os.Open(filepath.Join(s.dir, journalDir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // replayed meanwhile
		}
		if err != nil {
			return nil, err
		}
		br := bufio.NewReaderSize(f, 64<<10)
		for off := int64(0); ; {
			r, err := readRecord(br, off)
			if err != nil {
				break
			}
			off += int64(recHeadLen + payloadLen(r))
			switch r.typ {
			case recAccepted, recServed:
				if _, ok := accepted[r.id]; !ok {
					order = append(order, r.id)
				}
				accepted[r.id] = r
			case recDone:
				delete(accepted, r.id)
			}
		}
		f.Close()
	}
	var out []Journalled
	for _, id := range order {
		r, ok := accepted[id]
		if !ok {
			continue
		}
		if _, err := s.find(id); err == nil {
			continue // in files: listed as such
		}
		env, err := unmarshalBytes(r.envelope)
		if err != nil {
			continue // replay quarantines it
		}
		env.ID = id
		out = append(out, Journalled{Env: env, State: r.state, Size: int64(len(r.content))})
	}
	return out, nil
}
