#!/usr/bin/env bash
# Syscalls per message (not a test): runs relaykeeper under `strace -f -c`,
# sends MSGS messages with smtp-source (-s CONC) through it to smtp-sink, and
# prints the counts of the file-system calls that cost, divided by MSGS.
#
#   bash bench/syscalls.sh saf|proxy [MSGS [CONC]]
#   TRACE=%all bash bench/syscalls.sh ...   (every system call, not only the file-system ones)
#   SIZE=102400 bash bench/syscalls.sh ...  (smtp-source -l: bytes of payload; 4096 by default)
#
# saf: --as-server --forward-to SINK --forward-on-disconnect (acceptance and
# delivery both counted); proxy: --as-proxy SINK. Listens on 127.0.0.1 only;
# ends what it started by PID.
set -euo pipefail
mode=${1:?saf or proxy} msgs=${2:-2000} conc=${3:-10} size=${SIZE:-4096}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${RELAYKEEPER_BIN:-$ROOT/bin/relaykeeper}
WORK=$(mktemp -d /tmp/rks-XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

port() { echo $((20000 + RANDOM % 20000)); }
listening() { for _ in $(seq 200); do [[ -n $(ss -Htln "( sport = :$1 )") ]] && return 0; sleep 0.05; done; return 1; }

sink=$(port)
smtp-sink -u nobody -c -4 "inet:127.0.0.1:$sink" 256 >"$WORK/sink.out" 2>&1 &
pids+=($!)
listening "$sink"
rk=$(port)
args=(--config "$ROOT/bench/relaykeeper.toml" --port "$rk" --interface 127.0.0.1 --spool-dir "$WORK/spool" --log-file "$WORK/log")
case $mode in
saf) args=(--as-server "${args[@]}" --forward-to "127.0.0.1:$sink" --forward-on-disconnect) ;;
proxy) args=(--as-proxy "127.0.0.1:$sink" "${args[@]}") ;;
*) echo "mode: saf or proxy" >&2; exit 2 ;;
esac
strace -f -c -o "$WORK/strace" -e trace="${TRACE:-fsync,fdatasync,syncfs,openat,unlinkat,renameat,renameat2,flock,pwrite64,write}" "$BIN" "${args[@]}" >"$WORK/stdout" 2>&1 &
spid=$!
pids+=($spid)
listening "$rk"
smtp-source -4 -M bench.test -f s@bench.test -t r@sink.test -m "$msgs" -s "$conc" -l "$size" "127.0.0.1:$rk"
for _ in $(seq 600); do
	n=$(tail -c 80 "$WORK/sink.out" | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -n 1 | cut -d= -f2)
	((${n:-0} >= msgs)) && break
	sleep 0.05
done
# End relaykeeper (strace's child) so that strace writes its summary.
kill -TERM "$(pgrep -P "$spid")" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
echo "relaykeeper $mode, $msgs messages of $size bytes, $conc sessions (sink got ${n:-0}): calls per message"
awk -v m="$msgs" '$NF ~ /^[a-z0-9_]+$/ && $(NF-1) ~ /^[0-9]+$/ && $NF != "total" {
	calls = ($4 ~ /^[0-9]+$/ && NF >= 5) ? $4 : $(NF-2); printf "  %-10s %8d  %6.2f\n", $NF, calls, calls/m }' "$WORK/strace"
