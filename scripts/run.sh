#!/usr/bin/env bash
# Start Retort: migrate, make sure an admin exists, import the demo data, then run the web server and a
# Celery worker until Ctrl-C, which stops both and exits 0.
#
# Each server runs in a session (and process group) of its own, so Ctrl-C in the terminal reaches only
# this script, never the servers half-way through their start-up or the worker's pool and beat children.
# The script then stops each group as a whole: TERM, a grace period, KILL for whatever is left. A signal
# straight from the terminal used to reach every process at once and race the TERM sent here; the worker
# could exit before its children and leave one orphaned, holding the SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${PORT:-8000}"
HOST="${HOST:-127.0.0.1}"
GRACE_S="${RETORT_STOP_GRACE_S:-15}"
VAR="${RETORT_VAR_DIR:-var}"
LOG="$VAR/log"
mkdir -p "$LOG"

pids=()
stop_all() {
  # $! too: a signal may land between starting a server and recording its pid.
  local groups=("${pids[@]}") pid alive deadline
  [ -n "${!:-}" ] && groups+=("$!")
  pids=()
  [ "${#groups[@]}" -eq 0 ] && return 0
  echo "Stopping Retort…"
  for pid in "${groups[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + GRACE_S))
  while [ "$SECONDS" -lt "$deadline" ]; do
    alive=0
    for pid in "${groups[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.2
  done
  for pid in "${groups[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "Stopped."
}
on_signal() {
  trap '' INT TERM  # a second Ctrl-C does not cut the clean-up short
  echo
  stop_all
  trap - EXIT
  exit 0
}
on_exit() {
  local status=$?
  trap '' INT TERM
  stop_all
  exit "$status"
}
trap on_signal INT TERM
trap on_exit EXIT

# A person using Retort meets its own styled error pages, not Django's debug pages: serve with DEBUG off
# unless asked (DEBUG=1 make run). Static files then come from collectstatic through WhiteNoise.
export DEBUG="${DEBUG:-0}"
$PY manage.py check_services
$PY manage.py migrate --noinput -v 0
$PY manage.py ensure_admin
$PY manage.py load_demo
# With DEBUG off, WhiteNoise serves the collected, hashed files; collecting again takes about two seconds.
$PY manage.py collectstatic --noinput -v 0

# One worker serves every queue here; production runs one per queue (see README). The worker logs
# through Django's logging (to stderr), so its output is what goes to the log file.
setsid $PY -m celery -A config worker -Q default,llm,gpu --concurrency 2 --loglevel INFO \
  --hostname "retort@%h" --beat --schedule "$VAR/celerybeat-schedule" >>"$LOG/worker.log" 2>&1 </dev/null &
pids+=("$!")
setsid $PY manage.py runserver "$HOST:$PORT" --noreload --skip-checks >>"$LOG/web.log" 2>&1 </dev/null &
pids+=("$!")

for _ in $(seq 1 100); do
  if $PY - "$HOST" "$PORT" <<'PYEOF' 2>/dev/null; then break; fi
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.2).close()
PYEOF
  sleep 0.2
done

cat <<MSG

  Retort is running at http://$HOST:$PORT/
  Log in as ${RETORT_ADMIN_USERNAME:-admin} (the password was printed when the user was created, or is RETORT_ADMIN_PASSWORD).
  Logs: $LOG/web.log, $LOG/worker.log. Press Ctrl-C to stop.

MSG
set +e
wait -n "${pids[@]}"
status=$?
echo "A Retort server exited on its own (status $status); stopping the other."
exit $((status == 0 ? 1 : status))
