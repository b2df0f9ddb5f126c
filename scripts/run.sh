#!/usr/bin/env bash
# Start Retort: migrate, make sure an admin exists, import the demo data, then run the web server and a
# Celery worker until Ctrl-C, which stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${PORT:-8000}"
HOST="${HOST:-127.0.0.1}"
mkdir -p var/log

$PY manage.py check_services
$PY manage.py migrate --noinput -v 0
$PY manage.py ensure_admin
$PY manage.py load_demo
if [ "$($PY -c 'import django; django.setup(); from django.conf import settings; print(int(settings.DEBUG))' 2>/dev/null)" = "0" ]; then
  $PY manage.py collectstatic --noinput -v 0
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "Stopping Retort…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  echo "Stopped."
}
trap stop INT TERM EXIT

# One worker serves every queue here; production runs one per queue (see README).
$PY -m celery -A config worker -Q default,llm,gpu --concurrency 2 --loglevel INFO \
  --hostname "retort@%h" --logfile var/log/worker.log \
  --beat --schedule var/celerybeat-schedule &
pids+=($!)
$PY manage.py runserver "$HOST:$PORT" --noreload --skip-checks >var/log/web.log 2>&1 &
pids+=($!)

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
  Logs: var/log/web.log, var/log/worker.log. Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
