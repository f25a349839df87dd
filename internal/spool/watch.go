package spool

// Watcher hears of every message this process commits to Ready, right after
// its envelope has been renamed into place: the hand-off from intake to a
// delivery scheduler in the same process, which then need not list the
// directory to find it. Messages other processes add (the queue commands,
// a pickup directory, E-MailRelay's tools) are found by listing, as before.
type Watcher interface {
	// Committed is called on the committing goroutine and must not block.
	// envelope is the envelope file's content as committed (filters may
	// have edited it since Prepare), or nil when the spool did not read
	// it back.
	Committed(id string, envelope []byte)
}

// Watch makes w hear of every message committed from now on; nil stops it.
// At most one Watcher is set.
func (s *Spool) Watch(w Watcher) {
	if w == nil {
		s.watcher.Store(nil)
		return
	}
	s.watcher.Store(&w)
}

// Unwatch stops w hearing of commits, if it is the current Watcher.
func (s *Spool) Unwatch(w Watcher) {
	if p := s.watcher.Load(); p != nil && *p == w {
		s.watcher.CompareAndSwap(p, nil)
	}
}

// committed tells the Watcher, if any, of a message now Ready.
func (s *Spool) committed(id string, envelope []byte) {
	if p := s.watcher.Load(); p != nil {
		(*p).Committed(id, envelope)
	}
}
