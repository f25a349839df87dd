package postfixlog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// Position is how far a Follower has read a log file: up to Offset, the end
// of the last line it handed on, in the file identified by Dev and Inode.
// LineLen and LineHash describe that last line (its length with the
// newline, and a hash of it), so that a file truncated and grown again past
// Offset, or a rotated copy, can be told from the file that was read.
type Position struct {
	Dev      uint64 `json:"dev"`
	Inode    uint64 `json:"inode"`
	Offset   int64  `json:"offset"`
	LineLen  int64  `json:"line_len,omitempty"`
	LineHash string `json:"line_hash,omitempty"`
}

// State is what a Follower keeps in its state file: its Position, and the
// caller's own data (Follower.Checkpoint), saved together so that they
// always describe the same moment.
type State struct {
	Position
	App json.RawMessage `json:"app,omitempty"`
}

// LoadState reads a state file. A missing file is the zero State.
func LoadState(path string) (State, error) {
	var st State
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("postfixlog: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("postfixlog: state file %s: %w", path, err)
	}
	if st.Offset < 0 || st.LineLen < 0 || st.LineLen > st.Offset {
		return State{}, fmt.Errorf("postfixlog: state file %s: bad offset %d (last line %d bytes)", path, st.Offset, st.LineLen)
	}
	return st, nil
}

// SaveState writes a state file atomically (see package safefile), so that
// after a crash the file holds either the old state or the new one, never a
// mixture.
func SaveState(path string, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("postfixlog: %w", err)
	}
	// A state file that cannot be fsynced into its directory is an error:
	// after a crash the follower would read the log again from an older
	// position, and act on refusals twice.
	if err := safefile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("postfixlog: saving state: %w", err)
	}
	return nil
}

// lineHash is the hash of a line as a Position records it.
func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:16])
}
