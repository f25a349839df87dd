package policy

import (
	"errors"
	"os"
	"sync"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// fileVersions are the /file/name files of mynetworks and relay_domains
// (Postfix's list form, not a lookup table) as they were when read, by
// name, so that a changed one can be read again; a file that could not be
// read is nil.
type fileVersions map[string]os.FileInfo

// open opens name for reading and, if v is not nil, records its version
// first: a change made while it is read shows at the next check.
func (v fileVersions) open(name string) (*os.File, error) {
	if v != nil {
		fi, _ := os.Stat(name)
		v[name] = fi
	}
	return safefile.Open(name)
}

// changed reports whether a file is not what it was when read.
func (v fileVersions) changed() bool {
	for name, was := range v {
		now, err := os.Stat(name)
		if (err == nil) != (was != nil) || err == nil && !sameFile(was, now) {
			return true
		}
	}
	return false
}

func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// fileLists are mynetworks and relay_domains as last read, with the files
// they came from.
type fileLists struct {
	nets  []NetworkRule
	relay relayDomains
	files fileVersions
}

// listLoader reads mynetworks (MyNetworkSpec) and relay_domains, and
// reads them again when one of their files changes.
type listLoader struct {
	mu     sync.Mutex // serialises reload
	failed fileVersions
}

// loadLists reads the lists of opts.
func loadLists(opts *Options) (*fileLists, error) {
	l := &fileLists{files: fileVersions{}}
	var errs []error
	var err error
	if l.nets, err = parseNetworks(opts.MyNetworkSpec, opts.NetworkTables, l.files); err != nil {
		errs = append(errs, err)
	}
	l.nets = append(append([]NetworkRule(nil), opts.MyNetworkRules...), l.nets...)
	if l.relay, err = parseRelayDomainsListed(opts.RelayDomains, opts.Tables, l.files, listsRelayRecipients(opts)); err != nil {
		errs = append(errs, err)
	}
	return l, errors.Join(errs...)
}

// ReloadLists reads mynetworks and relay_domains again if one of their
// /file/name files changed since they were read (on SIGHUP and every few
// seconds, with the tables). A file with a problem leaves the lists in
// force and gives the problems, with FILE:LINE, once.
func (e *Engine) ReloadLists() error {
	e.loader.mu.Lock()
	defer e.loader.mu.Unlock()
	if !e.named.Load().files.changed() || e.loader.failed != nil && !e.loader.failed.changed() {
		return nil // unchanged, or this version failed and was reported
	}
	l, err := loadLists(&e.opts)
	if err != nil {
		e.loader.failed = l.files
		return err
	}
	e.loader.failed = nil
	e.named.Store(l)
	if w := e.WideNetworks(); w != "" {
		e.opts.Log.Warn("policy: " + w)
	}
	return nil
}
