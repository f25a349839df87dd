//go:build race

package enforce

// gm22Race: the race detector makes TestGm22GmailVariants' thousands of
// replies slow; it checks a sample of them.
const gm22Race = true
