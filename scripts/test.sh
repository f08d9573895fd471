#!/usr/bin/env bash
# Run the whole test suite twice: embedded defaults (SQLite, filesystem broker, embedded Qdrant), then against
# PostgreSQL and Redis when they answer on localhost (as on CI). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
echo "== Embedded defaults: SQLite, filesystem broker, embedded Qdrant"
env -u DATABASE_URL -u REDIS_URL -u QDRANT_URL "$PY" -m pytest "$@"
PG_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
REDIS="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
if "$PY" - "$PG_URL" "$REDIS" <<'PYEOF'
import sys, psycopg, redis
try:
    psycopg.connect(sys.argv[1].replace("postgres://", "postgresql://"), connect_timeout=3).close()
    redis.Redis.from_url(sys.argv[2], socket_connect_timeout=3).ping()
except Exception as error:  # report which service is missing and skip that run
    print(f"PostgreSQL/Redis not reachable ({error}); the services run is skipped.")
    sys.exit(1)
PYEOF
then
  echo "== Services: PostgreSQL + Redis broker"
  DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" "$PY" -m pytest "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "CI must run the services suite: PostgreSQL and Redis are expected on localhost." >&2
  exit 1
fi
