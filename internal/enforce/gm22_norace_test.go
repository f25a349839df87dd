//go:build !race

package enforce

const gm22Race = false
