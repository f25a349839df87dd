#!/usr/bin/env bash
# relaykeeper benchmark (not a test): messages per second and peak RSS of
#
#   direct                            smtp-source -> smtp-sink
#   relaykeeper store-and-forward     smtp-source -> relaykeeper --as-server --forward-on-disconnect -> smtp-sink
#   relaykeeper store-and-forward, poll 1 s   (same, --poll 1 instead of --forward-on-disconnect)
#   relaykeeper proxy                 smtp-source -> relaykeeper --as-proxy -> smtp-sink
#   postfix relay                     smtp-source -> private Postfix (relayhost = sink) -> smtp-sink
#
# for every message size and concurrency (smtp-source -s). Each row starts a
# fresh smtp-sink and a fresh relay. See bench/README.md for what is measured
# and how; `QUICK=1 bash bench/run.sh` is a smoke run of a few seconds.
#
# Everything listens on 127.0.0.1 only. Every process started here is ended
# by PID on exit. The script exits non-zero if a row does not deliver all its
# messages within ROW_TIMEOUT seconds.
set -euo pipefail

# The command as given: the overrides set in the environment, then the script.
cmd="bash bench/run.sh${*:+ $*}"
for v in BENCH_DIR OLD_BIN RELAYKEEPER_BIN ROW_TIMEOUT PATHS CONCURRENCY SIZES MSGS_100K_C1 MSGS_4K_C1 MSGS_100K MSGS_4K MSGS QUICK; do
	[[ -z ${!v:-} ]] || cmd="$v=${!v} $cmd"
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${RELAYKEEPER_BIN:-$ROOT/bin/relaykeeper}
OUT_DIR=$ROOT/bench/out
RESULTS=$OUT_DIR/results.md

QUICK=${QUICK:-0}
SIZES=${SIZES:-"4096 102400"}           # smtp-source -l, bytes of payload
CONCURRENCY=${CONCURRENCY:-"1 10 100"}  # smtp-source -s
# Which paths to run, in this order: direct saf saf-poll proxy postfix.
# saf-old and proxy-old run OLD_BIN, another build, in the same rows
# (before and after a change, side by side).
PATHS=${PATHS:-"direct saf saf-poll proxy postfix"}
OLD_BIN=${OLD_BIN:-}
if [[ $QUICK == 1 ]]; then
	MSGS_4K=${MSGS_4K:-60} MSGS_100K=${MSGS_100K:-30}
	MSGS_4K_C1=${MSGS_4K_C1:-20} MSGS_100K_C1=${MSGS_100K_C1:-10}
	ROW_TIMEOUT=${ROW_TIMEOUT:-60}
else
	MSGS_4K=${MSGS_4K:-5000} MSGS_100K=${MSGS_100K:-1000}
	MSGS_4K_C1=${MSGS_4K_C1:-2000} MSGS_100K_C1=${MSGS_100K_C1:-1000}
	ROW_TIMEOUT=${ROW_TIMEOUT:-180}
fi
# MSGS, if set, overrides every count above.

die() { echo "bench: FAIL: $*" >&2; KEEP_WORK=1; exit 1; }
log() { echo "bench: $*" >&2; }

for tool in smtp-source smtp-sink postfix ss awk; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install postfix iproute2)"
done
[[ -x $BIN ]] || die "$BIN not built (make build)"
[[ " $PATHS " != *-old* ]] || [[ -x $OLD_BIN ]] || die "saf-old and proxy-old need OLD_BIN, another relaykeeper build"
[[ $(id -u) == 0 ]] || [[ " $PATHS " != *" postfix "* ]] || die "the private Postfix needs root (or set PATHS without postfix)"

# ---------------------------------------------------------------- processes
PIDS=()      # every background process started here
PF_BASES=()  # every private Postfix instance started here
# BENCH_DIR picks the file system of the spools and Postfix's queue (a
# journalled ext4 mounted for the run, say); short: Postfix's socket paths
# must stay < 108 bytes.
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/rkb-XXXXXX")
chmod 755 "$WORK"                 # the postfix user must traverse it
KEEP_WORK=0

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL. Only for our PIDs.
stop_pid() {
	local pid=$1 i
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		alive "$pid" || break
		# A child of ours that exited is a zombie until waited for.
		if [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then break; fi
		sleep 0.05
	done
	alive "$pid" && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] && kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

pf_master_pid() { # BASE -> master PID, if it runs in that instance's queue directory
	local base=$1 pid
	pid=$(tr -d ' \n' 2>/dev/null <"$base/spool/pid/master.pid") || return 1
	[[ $pid =~ ^[0-9]+$ ]] && (( pid > 1 )) || return 1
	[[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$base/spool" ]] || return 1
	echo "$pid"
}

pf_stop() { # BASE: postfix stop, then kill by PID whatever of it lingers
	local base=$1 master kids i
	master=$(pf_master_pid "$base") || return 0
	kids=$(ps -o pid= --ppid "$master" 2>/dev/null || true)
	timeout 30 postfix -c "$base/etc" stop >/dev/null 2>&1 || true
	for ((i = 0; i < 200; i++)); do alive "$master" || break; sleep 0.05; done
	alive "$master" && kill -KILL "$master" 2>/dev/null || true
	for k in $kids; do alive "$k" && kill -KILL "$k" 2>/dev/null || true; done
}

cleanup() {
	local rc=$? pid base
	for base in "${PF_BASES[@]}"; do pf_stop "$base"; done
	for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
	if [[ $KEEP_WORK == 1 || ($rc != 0 && $rc != 130 && $rc != 143) ]]; then
		log "work directory kept for inspection: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port below the kernel's ephemeral range (so that no outgoing connection
# can hold it meanwhile) that no TCP socket uses, in any state. smtp-sink
# binds with SO_REUSEPORT: a stray one on the same port would silently take
# half the connections, hence the check for every state, not only LISTEN.
read -r EPH_LO _ </proc/sys/net/ipv4/ip_local_port_range
free_port() {
	local p i lo=10000 hi=$((EPH_LO - 1))
	((hi > lo + 1000)) || { lo=20000 hi=60000; }
	for ((i = 0; i < 100; i++)); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
		[[ -z $(ss -Htan "( sport = :$p )") ]] && { echo "$p"; return; }
	done
	die "no free port"
}

wait_listen() { # PORT [PID]: wait up to 10 s until PORT is listening; 1 if PID exited first
	local port=$1 pid=${2:-} i
	for ((i = 0; i < 200; i++)); do
		[[ -n $(ss -Htln "( sport = :$port )") ]] && return 0
		if [[ -n $pid ]] && ! alive "$pid"; then
			wait "$pid" 2>/dev/null || true
			return 1
		fi
		sleep 0.05
	done
	die "nothing listening on 127.0.0.1:$port after 10 s"
}

now() { echo "${EPOCHREALTIME/,/.}"; }

# VmHWM (peak RSS), in KiB, of one PID.
hwm_kib() { awk '/^VmHWM:/ {print $2; f=1} END {if (!f) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
# CPU time (user+system, own + waited-for children) of one PID, in seconds.
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f", ($12+$13+$14+$15)/t}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# ---------------------------------------------------------------- smtp-sink
SINK_PID= SINK_PORT= SINK_OUT=
start_sink() {
	local try
	for try in 1 2 3; do
		SINK_PORT=$(free_port)
		SINK_OUT=$WORK/sink-$SINK_PORT.out
		# -c: running counters on stdout (sess= quit= mesg=), updated at
		# every "." and QUIT; no dump files; backlog 256; -u: drop root.
		smtp-sink -u nobody -c -4 "inet:127.0.0.1:$SINK_PORT" 256 >"$SINK_OUT" 2>&1 &
		SINK_PID=$!
		PIDS+=("$SINK_PID")
		wait_listen "$SINK_PORT" "$SINK_PID" && return 0
		log "smtp-sink on port $SINK_PORT did not start: $(head -c 300 "$SINK_OUT")"
	done
	die "smtp-sink did not start"
}
sink_count() { # messages the sink has received so far
	local last
	last=$(tail -c 80 "$SINK_OUT" 2>/dev/null | tr '\r' '\n' | grep 'mesg=' | tail -n 1) || true
	last=${last##*mesg=}
	echo "${last:-0}"
}
stop_sink() { stop_pid "$SINK_PID"; SINK_PID=; }

# ---------------------------------------------------------------- relaykeeper
RK_PID= RK_PORT= RK_DIR=
start_relaykeeper() { # MODE: saf | saf-poll | proxy [BINARY]
	local mode=$1 try
	for try in 1 2 3; do
		start_relaykeeper1 "$mode" "${2:-}" && return 0
		log "relaykeeper on port $RK_PORT did not start: $(head -c 600 "$RK_DIR/stdout") $(tail -c 600 "$RK_DIR/log" 2>/dev/null)"
	done
	die "relaykeeper did not start"
}
start_relaykeeper1() {
	local mode=$1 args
	RK_PORT=$(free_port)
	RK_DIR=$WORK/rk-$RK_PORT
	mkdir -p "$RK_DIR"
	args=(--config "$ROOT/bench/relaykeeper.toml" --port "$RK_PORT" --interface 127.0.0.1 --spool-dir "$RK_DIR/spool" --log-file "$RK_DIR/log")
	case $mode in
	saf) args=(--as-server "${args[@]}" --forward-to "127.0.0.1:$SINK_PORT" --forward-on-disconnect) ;;
	saf-poll) args=(--as-server "${args[@]}" --forward-to "127.0.0.1:$SINK_PORT" --poll 1) ;;
	proxy) args=(--as-proxy "127.0.0.1:$SINK_PORT" "${args[@]}") ;;
	esac
	"${2:-$BIN}" "${args[@]}" >"$RK_DIR/stdout" 2>&1 &
	RK_PID=$!
	PIDS+=("$RK_PID")
	wait_listen "$RK_PORT" "$RK_PID"
}

# ---------------------------------------------------------------- Postfix
# The settings of test/harness/postfix.go: private queue and data
# directories, smtpd on 127.0.0.1:PORT, its own maillog_file through
# postlogd, no chroot, no local delivery, relayhost = the sink. Concurrency
# and process limits are Postfix's defaults.
PF_BASE= PF_PORT=
start_postfix() {
	PF_PORT=$(free_port)
	PF_BASE=$WORK/pf$PF_PORT
	mkdir -p "$PF_BASE/etc" "$PF_BASE/spool" "$PF_BASE/data"
	chmod 755 "$PF_BASE"
	chown postfix "$PF_BASE/data"
	cat >"$PF_BASE/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_BASE/spool
data_directory = $PF_BASE/data
maillog_file = $PF_BASE/maillog
maillog_file_prefixes = $PF_BASE
myhostname = postfix.relaykeeper.test
mydomain = relaykeeper.test
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mynetworks_style = host
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost = [127.0.0.1]:$SINK_PORT
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 no local delivery
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_tls_security_level = none
smtpd_tls_security_level = none
delay_warning_time = 0h
smtputf8_enable = no
EOF
	cat >"$PF_BASE/etc/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
	PF_BASES+=("$PF_BASE")
	timeout 60 postfix -c "$PF_BASE/etc" start >"$PF_BASE/start.out" 2>&1 ||
		{ cat "$PF_BASE/start.out" >&2; die "postfix -c $PF_BASE/etc start failed"; }
	wait_listen "$PF_PORT"
}
# Peak RSS of the instance: the sum of VmHWM over the master and all its
# children alive at the end of the row (processes that exited earlier are
# not counted; with Postfix's default max_idle of 100 s few do). Prints
# "SUM_KIB NPROCS MAX_KIB CPU_S PSS_KIB"; PSS_KIB is the sum of the
# processes' proportional set sizes at the end (shared pages divided among
# their users), a fairer footprint than the sum of peaks.
pf_usage() {
	local master pid sum=0 n=0 max=0 h cpu pss=0 p
	master=$(pf_master_pid "$PF_BASE") || { echo "0 0 0 0"; return; }
	cpu=$(cpu_s "$master")
	for pid in $master $(ps -o pid= --ppid "$master"); do
		h=$(hwm_kib "$pid")
		sum=$((sum + h)); n=$((n + 1)); ((h > max)) && max=$h
		p=$(awk '/^Pss:/ {print $2; f=1} END {if (!f) print 0}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)
		pss=$((pss + p))
		[[ $pid == "$master" ]] || cpu=$(awk -v a="$cpu" -v b="$(cpu_s "$pid")" 'BEGIN {printf "%.2f", a+b}')
	done
	echo "$sum $n $max $cpu $pss"
}

# ---------------------------------------------------------------- one row
ROWS=()
count_for() { # SIZE CONC -> message count
	local size=$1 conc=$2
	if [[ -n ${MSGS:-} ]]; then echo "$MSGS"; return; fi
	if ((size <= 16384)); then
		((conc == 1)) && echo "$MSGS_4K_C1" || echo "$MSGS_4K"
	else
		((conc == 1)) && echo "$MSGS_100K_C1" || echo "$MSGS_100K"
	fi
}
human_size() { (( $1 % 1024 == 0 )) && echo "$(($1 / 1024)) KB" || echo "$1 B"; }

run_row() { # PATH SIZE CONC
	local path=$1 size=$2 conc=$3 n target label t0 t_src t1 got secs rate rss notes src_rc=0 deadline sent cnt sum nproc max cpu pss
	n=$(count_for "$size" "$conc")
	start_sink
	case $path in
	direct) target=$SINK_PORT label="direct" ;;
	saf) start_relaykeeper saf; target=$RK_PORT label="relaykeeper store-and-forward" ;;
	saf-poll) start_relaykeeper saf-poll; target=$RK_PORT label="relaykeeper store-and-forward, --poll 1" ;;
	saf-old) start_relaykeeper saf "$OLD_BIN"; target=$RK_PORT label="relaykeeper store-and-forward (OLD_BIN)" ;;
	proxy-old) start_relaykeeper proxy "$OLD_BIN"; target=$RK_PORT label="relaykeeper proxy (OLD_BIN)" ;;
	proxy) start_relaykeeper proxy; target=$RK_PORT label="relaykeeper proxy" ;;
	postfix) start_postfix; target=$PF_PORT label="postfix relay" ;;
	*) die "unknown path $path" ;;
	esac
	log "$label, $(human_size "$size"), -s $conc, $n messages"

	t0=$(now)
	timeout "$ROW_TIMEOUT" smtp-source -4 -M bench.relaykeeper.test -f sender@bench.relaykeeper.test \
		-t rcpt@sink.relaykeeper.test -m "$n" -s "$conc" -l "$size" "127.0.0.1:$target" \
		>"$WORK/source.out" 2>&1 || src_rc=$?
	t_src=$(now)
	if [[ $src_rc != 0 ]] || [[ -s $WORK/source.out ]]; then
		log "smtp-source exited $src_rc; its output:"; head -n 20 "$WORK/source.out" >&2
		[[ $src_rc == 0 ]] || die "$label: smtp-source failed (exit $src_rc)"
	fi
	# End condition: the sink's own counter reaches n. Bounded by ROW_TIMEOUT
	# from the start of the row.
	deadline=$(awk -v a="$t0" -v b="$ROW_TIMEOUT" 'BEGIN {printf "%d", a+b}')
	while :; do
		got=$(sink_count)
		((got >= n)) && break
		if (( ${EPOCHSECONDS} >= deadline )); then
			KEEP_WORK=1
			die "$label, $(human_size "$size"), -s $conc: the sink has $got of $n messages after ${ROW_TIMEOUT}s (work dir $WORK)"
		fi
		sleep 0.02
	done
	t1=$(now)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}')
	rate=$(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f", (s > 0 ? n/s : 0)}')
	notes=""
	case $path in
	direct) rss="–"; notes="sink peak RSS $(awk -v k="$(hwm_kib "$SINK_PID")" 'BEGIN {printf "%.1f", k/1024}') MiB" ;;
	saf | saf-poll | proxy | saf-old | proxy-old)
		rss=$(awk -v k="$(hwm_kib "$RK_PID")" 'BEGIN {printf "%.1f", k/1024}')
		notes="relay CPU $(cpu_s "$RK_PID") s (user+sys)"
		[[ $path == proxy* ]] || notes+="; all accepted after $(awk -v a="$t0" -v b="$t_src" 'BEGIN {printf "%.2f", b-a}') s"
		;;
	postfix)
		read -r sum nproc max cpu pss < <(pf_usage)
		rss=$(awk -v k="$sum" 'BEGIN {printf "%.1f", k/1024}')
		notes="Σ VmHWM of $nproc processes (largest $(awk -v k="$max" 'BEGIN {printf "%.1f", k/1024}') MiB, Σ PSS at end $(awk -v k="$pss" 'BEGIN {printf "%.1f", k/1024}') MiB); CPU $cpu s; all accepted after $(awk -v a="$t0" -v b="$t_src" 'BEGIN {printf "%.2f", b-a}') s"
		;;
	esac
	# Stop the relay, then check that nothing more arrived (no duplicates).
	case $path in
	saf | saf-poll | proxy | saf-old | proxy-old)
		stop_pid "$RK_PID"
		if [[ $path != proxy* ]]; then
			sent=$(grep -c ' delivery .*result=sent' "$RK_DIR/log" || true)
			((sent == n)) || { log "WARNING: $label: $sent result=sent lines in the mail log for $n messages"; notes+="; $sent result=sent for $n"; }
		fi
		;;
	postfix)
		pf_stop "$PF_BASE" # postlogd has written every line by then
		sent=$(grep -c ' status=sent ' "$PF_BASE/maillog" || true)
		((sent == n)) || { log "WARNING: $label: $sent status=sent lines in Postfix's mail log for $n messages"; notes+="; $sent status=sent for $n"; }
		;;
	esac
	sleep 0.1
	cnt=$(sink_count)
	if ((cnt != n)); then
		log "WARNING: $label: the sink received $cnt messages for $n sent"
		notes+="; sink received $cnt for $n (duplicates)"
	fi
	stop_sink
	ROWS+=("| $label | $(human_size "$size") | $conc | $n | $secs | $rate | $rss | $notes |")
	log "  -> ${secs}s, $rate msgs/s, peak RSS $rss MiB ($notes)"
	rm -rf "${RK_DIR:-/nonexistent}" "${PF_BASE:-/nonexistent}"
	RK_DIR= PF_BASE=
}

# ---------------------------------------------------------------- main
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

for size in $SIZES; do
	for conc in $CONCURRENCY; do
		for path in $PATHS; do
			run_row "$path" "$size" "$conc"
		done
	done
done

mkdir -p "$OUT_DIR"
{
	echo "# relaykeeper benchmark"
	echo
	echo "- date: $started"
	echo "- nproc: $(nproc) ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo))"
	echo "- commit: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "- command: \`$cmd\`"
	echo "- relaykeeper: $("$BIN" --version 2>&1 | head -n 1); Postfix $(postconf -h mail_version 2>/dev/null)"
	echo "- load average before the run: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
	echo "- relaykeeper's switches: the brief's, plus \`--config bench/relaykeeper.toml\` (raises the per-client connection limit for -s 100)"
	echo "- spools on: $(df -T "$WORK" | awk 'NR==2 {print $2}') ($WORK)"
	echo
	echo "| path | size | concurrency | messages | seconds | msgs/s | peak RSS (MiB) | notes |"
	echo "|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${ROWS[@]}"
	echo
	echo "seconds: from the start of smtp-source until smtp-sink's own counter (-c) shows every message."
	echo "peak RSS: relaykeeper's VmHWM (a fresh process per row); Postfix: the sum of VmHWM over the"
	echo "master and all its children alive at the end of the row (shared library pages are counted in"
	echo "every process, so this overstates Postfix's real footprint; notes give the largest single process
and the sum of PSS, shared pages divided among the processes, at the end of the row)."
} | tee "$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
log "results in $RESULTS"
