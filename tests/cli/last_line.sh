#!/bin/sh
# Runs a command with stdout and stderr into one file, as a job log holds them, and prints its exit
# status and the file's last line: an error must be the last thing a user sees (issue 16 item 8).
# usage: last_line.sh COMMAND [ARGS ...]
out=$(mktemp)
"$@" > "$out" 2>&1
rc=$?
echo "exit $rc; last line: $(tail -n 1 "$out")"
rm -f "$out"
