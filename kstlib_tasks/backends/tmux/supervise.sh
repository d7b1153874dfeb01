#!/bin/sh
# supervise.sh STATE STOPFILE POLICY MAX_RESTARTS ENVFILE -- ARGV...
#
#   tmux new-session -d -s NAME -- /bin/sh /path/supervise.sh STATE STOPFILE POLICY \
#       MAX_RESTARTS ENVFILE -- ARGV...
#
# (two or more words after `--`: tmux runs them without a shell, so no shell quoting, but an
# argument ending in `;` must be written `\;`. The caller removes a previous STOPFILE before
# the start and creates it before `send-keys C-c` to stop.)
#
# The pane's program for a session with a restart policy (no, on-failure, always). Why it is
# written this way:
#
# - The command gets EXACTLY the environment of ENVFILE (lines `export NAME='value'`, written by
#   kstlib): `env -i` starts a fresh /bin/sh that sources the file and execs ARGV, so nothing of
#   the tmux server's environment (TMUX, TMUX_PANE, the server's PATH) leaks in, and ARGV is
#   looked up with ENVFILE's PATH. dash exports PWD even when started with `env -i`, so that
#   shell unsets PWD before sourcing (ENVFILE may still set it); with bash as /bin/sh, `_`
#   would still come through (bash sets it for every command). The shell and env are exec'd
#   away: the command's pid is the one `$!` gave, with no process left in between.
# - POLICY no: the supervisor execs that same launcher, so the pane's process IS the command
#   (pane_pid, signals, the exit status tmux records are the command's own). STATE is written
#   once before, and stays "running": tmux's pane_dead_status is the truth afterwards.
# - Other policies run the command as a background job of this shell and `wait` for it, because
#   only then does the shell know its pid ($!) for STATE and can a trapped signal interrupt the
#   wait at once (a foreground child would delay the trap until it exits). Job control stays
#   off, so the command is in the pane's foreground process group: a C-c from the terminal
#   (`tmux send-keys C-c`) reaches the command itself. Background jobs of a non-interactive
#   shell start with SIGINT and SIGQUIT ignored: `env --default-signal=INT,QUIT` gives them back
#   their default, so the command's own handler (or default death) applies. They also get
#   stdin from /dev/null, and dash 0.5.12 does so even with an explicit `<&0`: the terminal is
#   kept as fd 3 and given as `<&3 3<&-`, so an attached user can still type to the command.
# - Stop is final. Once STOPFILE exists (kstlib creates it before its C-c) or the supervisor got
#   SIGINT, SIGTERM or SIGHUP, it starts nothing more: it waits for the current command to end
#   (its clean-up takes the time it needs) and exits with the command's code. SIGINT is not
#   passed on: the terminal already sent it to the whole group, and a second one would cut many
#   programs' graceful shutdown short. SIGTERM and SIGHUP are passed on, so that `kill PANE_PID`
#   and a killed pane (the kernel hangs up only the session leader, this shell) reach the
#   command as they would with policy no; signal this pid, not the group, or the command gets
#   SIGTERM twice.
# - A trapped signal interrupts `wait` with 128+N while the command may still run: wait again
#   until one wait ends without a signal arriving during it. dash keeps a finished job's status,
#   so waiting again after a late signal returns the same status instead of 127.
# - A command killed by signal N reads 128+N (the shell's own convention), and the supervisor
#   exits with the last code, so tmux's pane_dead_status shows it.
# - Backoff 0.5 s before the first restart, doubling, capped at 30 s (kept in tenths: dash has
#   integer arithmetic only). The sleep is a background job too, so a stop cuts it short.
# - MAX_RESTARTS 0 means unlimited for any policy; whether on-failure may have it is for the
#   caller's validation. STATE is one line, replaced atomically (tmp file + mv, 0600) so a
#   reader never sees half a line; a failure to write it never stops the session.

usage() {
    echo "usage: supervise.sh STATE STOPFILE no|on-failure|always MAX_RESTARTS ENVFILE -- ARGV..." >&2
    exit 2
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP
stopping= interrupted= child=
on_signal() {
    stopping=$1 interrupted=1
    if [ "$1" != INT ] && [ -n "$child" ]; then
        kill -s "$1" "$child" 2>/dev/null
    fi
}

[ "$#" -ge 7 ] && [ "$6" = "--" ] || usage
state=$1 stopfile=$2 policy=$3 max=$4 envfile=$5
shift 6
case $policy in no | on-failure | always) ;; *) usage ;; esac
case $max in '' | *[!0-9]*) usage ;; esac
case $envfile in */*) ;; *) envfile=./$envfile ;; esac  # `.` would search PATH for a bare name

um=$(umask)
runs=0 restarts=0 code= pid=
put_state() {
    umask 077
    printf 'runs=%s restarts=%s exit=%s pid=%s phase=%s\n' \
        "$runs" "$restarts" "$code" "$pid" "$1" 2>/dev/null >"$state.tmp" &&
        mv -f "$state.tmp" "$state" 2>/dev/null
    umask "$um"
}
# The launcher: a new /bin/sh with an empty environment reads ENVFILE, then becomes ARGV.
launch='unset PWD OLDPWD SHLVL; . "$1" || exit 126; shift; exec "$@"'

if [ "$policy" = no ]; then
    runs=1 pid=$$
    put_state running
    exec env --default-signal=INT,QUIT -i /bin/sh -c "$launch" supervise.sh "$envfile" "$@"
fi

exec 3<&0
delay=5  # tenths of a second
while :; do
    if [ -n "$stopping" ] || [ -e "$stopfile" ]; then
        pid=
        put_state done
        exit "${code:-0}"
    fi
    runs=$((runs + 1))
    [ "$runs" -gt 1 ] && restarts=$((restarts + 1))
    env --default-signal=INT,QUIT -i /bin/sh -c "$launch" supervise.sh "$envfile" "$@" <&3 3<&- &
    pid=$! child=$!
    put_state running
    interrupted=1
    while [ -n "$interrupted" ]; do
        interrupted=
        wait "$pid"
        code=$?
    done
    child=

    if [ -n "$stopping" ] || [ -e "$stopfile" ]; then
        pid=
        put_state done
        exit "$code"
    fi
    if [ "$policy" = on-failure ] && [ "$code" -eq 0 ]; then
        pid=
        put_state done
        exit 0
    fi
    if [ "$max" -gt 0 ] && [ "$restarts" -ge "$max" ]; then
        pid=
        put_state gaveup
        exit "$code"
    fi

    pid=
    put_state waiting
    sleep "$((delay / 10)).$((delay % 10))" &
    child=$!
    wait "$child"  # every trapped signal means stop: no need to wait again
    if [ -n "$stopping" ]; then
        kill "$child" 2>/dev/null  # a background sleep ignores the terminal's SIGINT
    fi
    child=
    delay=$((delay * 2))
    [ "$delay" -gt 300 ] && delay=300
done
