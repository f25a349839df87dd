package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// familiesEnv, set in the test binary's environment, makes it a launcher:
// it refuses socket() for every address family but those listed (as
// systemd's RestrictAddressFamilies= does, with EAFNOSUPPORT) and execs its
// arguments.
const familiesEnv = "AUD13_RESTRICT_ADDRESS_FAMILIES"

func init() {
	if fams := os.Getenv(familiesEnv); fams != "" {
		restrictFamiliesAndExec(strings.Fields(fams), os.Args[1:])
	}
}

var addressFamilies = map[string]uint32{"AF_UNIX": unix.AF_UNIX, "AF_INET": unix.AF_INET, "AF_INET6": unix.AF_INET6,
	"AF_NETLINK": unix.AF_NETLINK, "AF_PACKET": unix.AF_PACKET}

func restrictFamiliesAndExec(allowed, argv []string) {
	runtime.LockOSThread() // the filter is this thread's, and exec keeps it
	allow := unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}
	f := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // the syscall's number
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, K: unix.SYS_SOCKET},
		allow,
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 16}, // socket()'s family
	}
	for _, name := range allowed {
		fam, ok := addressFamilies[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown address family %s\n", name)
			os.Exit(2)
		}
		f = append(f, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 1, K: fam}, allow)
	}
	f = append(f, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EAFNOSUPPORT)})
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		panic(err)
	}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0); err != nil {
		panic(err)
	}
	panic(syscall.Exec(argv[0], argv, os.Environ()))
}

// unitSetting returns the value of a setting of etc/relaykeeper.service.
func unitSetting(t *testing.T, key string) string {
	t.Helper()
	f, err := os.Open("../../etc/relaykeeper.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			return v
		}
	}
	t.Fatalf("etc/relaykeeper.service has no %s=", key)
	return ""
}

// TestAud13UnitAllowsInterfaceNames: --interface (and [smtp] interfaces)
// takes a network interface's name, as E-MailRelay's does ("eth0",
// "eth0-ipv4"). Go finds an interface's addresses over a netlink socket,
// which the shipped unit's RestrictAddressFamilies= refused: under systemd
// the relay then failed to start with "lookup eth0-ipv4 on ...: no such
// host". The relay is run here under the unit's address families.
func TestAud13UnitAllowsInterfaceNames(t *testing.T) {
	t.Parallel()
	fams := unitSetting(t, "RestrictAddressFamilies")
	port := harness.FreePort(t)
	cmd := exec.Command(os.Args[0], harness.Binary(t), "--as-server", "--port", fmt.Sprint(port),
		"--interface", "lo-ipv4", "--spool-dir", t.TempDir())
	cmd.Env = append(os.Environ(), familiesEnv+"="+fams)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("with RestrictAddressFamilies=%s the relay exited (%v) instead of listening on lo-ipv4:\n%s", fams, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("with RestrictAddressFamilies=%s the relay does not listen on %s:\n%s", fams, addr, out.String())
		}
	}
}
