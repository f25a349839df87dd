package spool

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// cacheEpoch names the life of the page cache that holds the spool's
// unsynced files: the kernel's boot (bootID) and the mount of the spool's
// file system. A journal segment whose header names another epoch is
// replayed as after a power loss, every file checked against its record.
//
// The boot alone is not enough: a file system that fails under the relay
// (ext4 turning itself read-only on an I/O error, errors=remount-ro) drops
// the dirty pages of the files written out from the journal, and once it is
// checked and mounted again, under the same boot, those files are there
// with their names but empty. The new mount has a new mount id (unique for
// the boot with STATX_MNT_ID_UNIQUE, Linux 6.8); an older kernel's reusable
// id still tells most remounts apart, and a relay started in another mount
// namespace merely checks the files it could have trusted.
func cacheEpoch(dir string) string {
	boot := bootID()
	if boot == "" {
		return ""
	}
	var stx unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_MNT_ID_UNIQUE|unix.STATX_MNT_ID, &stx) != nil ||
		stx.Mask&(unix.STATX_MNT_ID_UNIQUE|unix.STATX_MNT_ID) == 0 {
		return boot
	}
	return fmt.Sprintf("%s mnt=%d", boot, stx.Mnt_id)
}
