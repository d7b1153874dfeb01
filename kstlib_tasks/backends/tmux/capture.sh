#!/bin/sh
# capture.sh LOG MAXBYTES MARKER: the program tmux's pipe-pane feeds with a pane's output.
#
#   tmux pipe-pane -t =NAME: 'exec /bin/sh /path/capture.sh LOG MAXBYTES MARKER'
#
# (each word shell-quoted, `#` doubled: pipe-pane runs its argument with `sh -c` after format
# expansion; `exec` leaves no extra shell behind.)
#
# Copies stdin to LOG byte for byte; when LOG holds MAXBYTES it becomes LOG.1 (replacing the old
# one) and a new LOG starts. MARKER (created by kstlib before the start) is removed last, once
# everything is written, so `stop` can wait for a complete log. Why it is written this way:
#
# - POSIX sh (dash) plus one GNU `head -c` per chunk instead of a Python copier: dash and head
#   are small and mostly shared pages, so the pair costs a fraction of the 11 MB an interpreter
#   keeps resident. GNU head -c N on a pipe reads in blocks of at most 8 KiB and never past N
#   bytes, so nothing is read ahead and lost between two chunks.
# - Speed matters as much as size: tmux never blocks a pane on a slow pipe-pane reader, it
#   buffers what the reader has not taken, without limit. A copier slower than the pane's
#   output therefore grows the tmux SERVER, not itself. The cost here is per chunk (a fork+exec
#   of head and of mv, about 2 ms), so small MAXBYTES are slow: measured on 2 cores, 64 KiB
#   chunks fall behind a `yes` flood and 256 KiB behind long lines, while 1 MiB kept the
#   server flat under every flood tried (bench/tmux_helpers_memory.py). Callers must not allow
#   less than 1 MiB; the script itself takes any size, so tests can rotate small files.
# - head writes through stdio: to a file, its stdout is fully buffered, so up to 4 KiB of an idle
#   pane's output would wait in head until more came (a bot printing a line a minute would show
#   nothing in its log for hours). `stdbuf -o0` makes head write each read at once; stdbuf
#   itself would cost one more exec per chunk (measured +0.7 ms, nearly doubling head), so it is
#   asked ONCE which LD_PRELOAD it sets, and each head gets that plus _STDBUF_O=0 directly (the
#   interface stdbuf uses with its libstdbuf.so). Without stdbuf the copy stays correct, only
#   late by up to 4 KiB while the pane is quiet.
# - The file size comes from /proc/$$/fdinfo/3 ("pos:" of the shell's own descriptor, which
#   head shares): read with the `read` builtin, no process per chunk. After head returns, a
#   LOG shorter than MAXBYTES means end of input (head stops early only at EOF or on an error),
#   without a second read that could block. Without /proc, `wc -c` does the same, slower.
# - umask 077: the logs hold whatever the program printed. Symbolic links are refused: LOG is
#   checked before it is opened, each new LOG after a rotation is created with noclobber
#   (O_EXCL, so a link put there in the meantime makes the open fail instead of being followed),
#   and mv renames LOG.1 without following it. The folder is the user's own (0700), so only the
#   user could race the first check; that is the accepted limit.
# - On a write failure (disk full, read-only) the reason goes to LOG.error and the copier EXITS
#   rather than keep reading and discarding: when the reader is gone, tmux's next write to it
#   fails and tmux stops piping that pane (pane_pipe becomes 0) and frees its buffer, so the
#   server's memory stays bounded with no process left at all. The pane keeps running, unlogged.
# - A full disk leaves no block for LOG.error, so MARKER doubles as a one-block reserve: it is
#   filled with 4 KiB at the start and emptied just before LOG.error is written (then removed).
#   This works when MARKER sits next to LOG, as kstlib puts it; elsewhere it is merely useless.
# - A signal kills the copier like any program; MARKER then stays and kstlib's wait times out,
#   which is the honest answer: the log is not complete.

umask 077
if [ "$#" -ne 3 ] || [ -z "$1" ] || [ -z "$3" ]; then
    echo "usage: capture.sh LOG MAXBYTES MARKER" >&2
    exit 2
fi
log=$1 max=$2 marker=$3
case $max in '' | *[!0-9]* | 0*) echo "capture.sh: MAXBYTES must be a positive integer" >&2; exit 2 ;; esac

# Record why the capture stops (one line in LOG.error), then remove MARKER and exit.
stop() {
    if [ -f "$marker" ] && [ ! -L "$marker" ]; then
        : >|"$marker"  # give back the reserved block first
    fi
    if [ ! -L "$log.error" ]; then
        printf 'log capture stopped: %s\n' "$1" >|"$log.error"
    fi 2>/dev/null
    rm -f "$marker"
    exit 1
}

# The last part of a "prog: ...: Reason" message: strerror text has no ": " of its own.
reason() {
    set -- "${1##*: }"
    printf '%s' "${1:-unknown error}"
}

if [ -f "$marker" ] && [ ! -L "$marker" ]; then
    printf '%4096s' '' >|"$marker" 2>/dev/null || : >|"$marker"
fi
if [ -e "$log.error" ] && [ ! -L "$log.error" ]; then
    rm -f "$log.error"
fi
if [ -L "$log" ]; then
    stop "$log is a symbolic link, refused"
fi
if ! { command exec 3>>"$log"; } 2>/dev/null; then
    stop "$(reason "$({ : >>"$log"; } 2>&1)")"
fi

size=0
if [ -s "$log" ]; then
    size=$(wc -c <"$log") || stop "cannot read the size of $log"
fi
preload=$(stdbuf -o0 printenv LD_PRELOAD 2>/dev/null) || preload=${LD_PRELOAD-}
fdinfo=/proc/$$/fdinfo/3
[ -r "$fdinfo" ] || fdinfo=

set -C
while :; do
    if [ "$size" -ge "$max" ]; then
        exec 3>&-
        err=$(mv -fT "$log" "$log.1" 2>&1) || stop "$(reason "$err")"
        if ! { command exec 3>"$log"; } 2>/dev/null; then
            [ -L "$log" ] && stop "$log is a symbolic link, refused"
            stop "$(reason "$({ : >>"$log"; } 2>&1)")"
        fi
        size=0
    fi
    err=$(LD_PRELOAD=$preload _STDBUF_O=0 head -c "$((max - size))" 2>&1 >&3) ||
        stop "$(reason "$err")"
    if [ -n "$fdinfo" ]; then
        # pos: is the end of the file once this descriptor has written; 0 before that
        read -r _ pos <"$fdinfo"
        [ "$pos" -gt 0 ] && size=$pos
    else
        size=$(wc -c <"$log") || stop "cannot read the size of $log"
    fi
    [ "$size" -lt "$max" ] && break
done
exec 3>&-
rm -f "$marker"
