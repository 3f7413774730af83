#!/usr/bin/env bash
# Starts or stops the development servers of messages-service (Postgres, Redis, RabbitMQ, and a
# PgBouncer in transaction pooling in front of Postgres) with all their data under .local/,
# idempotently. Runs as root on Debian/Ubuntu; Postgres runs as the
# `postgres` user because it refuses to run as root.
#
#   tools/services.sh install   install the Debian packages that are missing
#   tools/services.sh start     start whatever is not running (installs first)
#   tools/services.sh stop      stop exactly the servers started from this checkout
#   tools/services.sh status
#   tools/services.sh rabbitmqctl ARGS...   rabbitmqctl on the broker started here (e.g. add_vhost)
#
# Ports: PG_PORT (5432), REDIS_PORT (6379), AMQP_PORT (5672), PGBOUNCER_PORT (6432).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOCAL="$ROOT/.local"
PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
AMQP_PORT=${AMQP_PORT:-5672}
PGBOUNCER_PORT=${PGBOUNCER_PORT:-6432}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
RABBIT_BIN=/usr/lib/rabbitmq/bin

PACKAGES=(postgresql postgresql-contrib pgbouncer redis-server redis-sentinel redis-tools rabbitmq-server libpq-dev libhiredis-dev
  librabbitmq-dev pkg-config wrk curl python3)

log() { printf '[services] %s\n' "$*" >&2; }

install_packages() {
  local missing=()
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
}

# Postgres must be able to reach its data directory as the postgres user; a checkout under a
# private home directory is not reachable, so its data then lives in a folder named after it.
# The choice never changes once a cluster exists (start and stop must find the same one), and
# it is made on the checkout itself, which exists before .local/ does.
postgres_dir() {
  local fallback; fallback="/var/tmp/messages-service-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)/postgres"
  if [[ -f "$LOCAL/postgres/data/PG_VERSION" ]]; then
    echo "$LOCAL/postgres"
  elif [[ -f "$fallback/data/PG_VERSION" ]]; then
    echo "$fallback"
  elif runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    echo "$LOCAL/postgres"
  else
    echo "$fallback"
  fi
}

start_postgres() {
  local dir; dir=$(postgres_dir)
  mkdir -p "$dir/run"
  chown -R postgres:postgres "$dir"
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    log "initdb $dir/data"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    log "starting Postgres on 127.0.0.1:$PG_PORT"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $dir/run -c max_connections=200 -c fsync=on -c timezone=UTC" \
      start >/dev/null
  fi
  for _ in $(seq 1 50); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres && break
    sleep 0.2
  done
  local psql=("$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1)
  if [[ $("${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'messages'") != 1 ]]; then
    "${psql[@]}" -c "CREATE ROLE messages LOGIN"
  fi
  # messages_pods: for the tests that run whole service processes, whose relays would otherwise
  # take the outbox of the database the relay tests watch. messages_partitioned(_pods) and
  # messages_pgbouncer(_pods): the same suite again on a schema migrated with MESSAGES_PARTITIONS,
  # and through PgBouncer (make test).
  local database
  for database in messages messages_pods messages_partitioned messages_partitioned_pods messages_pgbouncer \
    messages_pgbouncer_pods; do
    if [[ $("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'") != 1 ]]; then
      "${psql[@]}" -c "CREATE DATABASE $database OWNER messages"
    fi
  done
  # Through PgBouncer the service sends no session settings: the server sets them (docs/scaling.md).
  for database in messages_pgbouncer messages_pgbouncer_pods; do
    "${psql[@]}" -c "ALTER DATABASE $database SET statement_timeout = '10s'" -c "ALTER DATABASE $database SET timezone = 'UTC'" \
      -c "ALTER DATABASE $database SET jit = off"
  done
}

stop_postgres() {
  local dir; dir=$(postgres_dir)
  if [[ -f "$dir/data/PG_VERSION" ]] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    log "stopping Postgres"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  fi
}

# PgBouncer in transaction pooling, as a larger fleet would put in front of Postgres
# (docs/scaling.md): every database of the Postgres above, for the user messages. It runs as the
# postgres user (it refuses root), with its files beside the Postgres data directory.
pgbouncer_running() {
  local pidfile=$1
  [[ -f $pidfile ]] && [[ $(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null) == pgbouncer ]]
}

start_pgbouncer() {
  local dir; dir="$(postgres_dir)/pgbouncer"
  mkdir -p "$dir"
  if pgbouncer_running "$dir/pgbouncer.pid"; then return 0; fi
  printf '"messages" ""\n' >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  chown -R postgres:postgres "$dir"
  log "starting PgBouncer on 127.0.0.1:$PGBOUNCER_PORT"
  runuser -u postgres -- pgbouncer -d -q "$dir/pgbouncer.ini"
  for _ in $(seq 1 50); do
    # Ours, not another PgBouncer on the port: the one of our pid file answers.
    pgbouncer_running "$dir/pgbouncer.pid" && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U messages -d messages \
      && return 0
    sleep 0.1
  done
  log "PgBouncer did not start; see $dir/pgbouncer.log"
  return 1
}

stop_pgbouncer() {
  local pidfile; pidfile="$(postgres_dir)/pgbouncer/pgbouncer.pid"
  if pgbouncer_running "$pidfile"; then
    local pid; pid=$(cat "$pidfile")
    log "stopping PgBouncer"
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}

start_redis() {
  mkdir -p "$LOCAL/redis"
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then return 0; fi
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$LOCAL/redis" --save '' --appendonly no \
    --daemonize yes --pidfile "$LOCAL/redis/redis.pid" --logfile "$LOCAL/redis/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "Redis did not start; see $LOCAL/redis/redis.log"
  return 1
}

stop_redis() {
  if [[ -f "$LOCAL/redis/redis.pid" ]] && kill -0 "$(cat "$LOCAL/redis/redis.pid")" 2>/dev/null; then
    log "stopping Redis"
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$LOCAL/redis/redis.pid")"
  fi
  rm -f "$LOCAL/redis/redis.pid"
}

# RabbitMQ as root: call the scripts in /usr/lib/rabbitmq/bin directly (the /usr/sbin wrappers
# switch user), give it its own Erlang distribution and epmd ports, and share HOME with the CLI.
rabbit_env() {
  export HOME="$LOCAL/rabbitmq"
  export RABBITMQ_NODENAME="messages@localhost"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$AMQP_PORT"
  export RABBITMQ_DIST_PORT=$((AMQP_PORT + 20000))
  export RABBITMQ_CTL_DIST_PORT_MIN=$((AMQP_PORT + 20001))
  export RABBITMQ_CTL_DIST_PORT_MAX=$((AMQP_PORT + 20010))
  export ERL_EPMD_PORT=$((AMQP_PORT + 30000))
  export RABBITMQ_MNESIA_BASE="$LOCAL/rabbitmq/mnesia"
  export RABBITMQ_LOG_BASE="$LOCAL/rabbitmq/log"
  export RABBITMQ_CONFIG_FILE="$LOCAL/rabbitmq/rabbitmq"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$LOCAL/rabbitmq/enabled_plugins"
  export RABBITMQ_PID_FILE="$LOCAL/rabbitmq/rabbitmq.pid"
  export ERL_CRASH_DUMP="$LOCAL/rabbitmq/erl_crash.dump"
}

start_rabbitmq() {
  mkdir -p "$LOCAL/rabbitmq/log"
  rabbit_env
  if "$RABBIT_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" status >/dev/null 2>&1; then return 0; fi
  echo "[]." >"$RABBITMQ_ENABLED_PLUGINS_FILE"
  printf 'loopback_users.guest = true\nlisteners.tcp.default = %s\n' "$AMQP_PORT" >"$RABBITMQ_CONFIG_FILE.conf"
  log "starting RabbitMQ on 127.0.0.1:$AMQP_PORT"
  "$RABBIT_BIN/rabbitmq-server" -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 120); do
    if "$RABBIT_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q await_startup --timeout 5 >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "RabbitMQ did not start; see $RABBITMQ_LOG_BASE"
  return 1
}

stop_rabbitmq() {
  [[ -d "$LOCAL/rabbitmq" ]] || return 0
  rabbit_env
  if "$RABBIT_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" status >/dev/null 2>&1; then
    log "stopping RabbitMQ"
    # Given the pid file, stop returns only once the node's process has exited.
    "$RABBIT_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1 || true
  fi
  # The node's own epmd (its port: rabbit_env) outlives the node, and refuses -kill while the
  # node is still registered: retry until its port is closed.
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$ERL_EPMD_PORT") 2>/dev/null || return 0
    epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
    sleep 0.1
  done
  log "epmd still listens on $ERL_EPMD_PORT"
}

case "${1:-}" in
  install) install_packages ;;
  start)
    install_packages
    start_postgres
    start_pgbouncer
    start_redis
    start_rabbitmq
    log "ready: postgres://messages@127.0.0.1:$PG_PORT/messages redis://127.0.0.1:$REDIS_PORT amqp://127.0.0.1:$AMQP_PORT" \
      "pgbouncer: postgres://messages@127.0.0.1:$PGBOUNCER_PORT/<database>"
    ;;
  stop)
    stop_rabbitmq
    stop_redis
    stop_pgbouncer
    stop_postgres
    ;;
  status)
    "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U messages -d messages || true
    "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -U postgres || true
    redis-cli -p "$REDIS_PORT" ping || true
    rabbit_env
    "$RABBIT_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q status >/dev/null 2>&1 && echo "rabbitmq up" || echo "rabbitmq down"
    ;;
  rabbitmqctl)
    shift
    rabbit_env
    exec "$RABBIT_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" "$@"
    ;;
  *)
    echo "usage: $0 install|start|stop|status|rabbitmqctl ARGS..." >&2
    exit 2
    ;;
esac
