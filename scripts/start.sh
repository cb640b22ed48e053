#!/usr/bin/env bash
# Builds the proxy and starts it on 127.0.0.1:4318 in front of MLflow. Without an MLflow URL
# (--mlflow-url or MLFLOW_TRACKING_URI) it first starts a local MLflow server with its SQLite
# store in .state/mlflow/ and uses that. Extra arguments go to the proxy. Safe to run again.
source "$(dirname "$0")/lib.sh"

mlflow_url="${MLFLOW_TRACKING_URI:-}"
listen="${OTLP_MLFLOW_PROXY_LISTEN:-127.0.0.1:4318}"
prev=""
for arg in "$@"; do
  case "$arg" in
    --mlflow-url=*) mlflow_url="${arg#--mlflow-url=}" ;;
    --listen=*) listen="${arg#--listen=}" ;;
  esac
  [ "$prev" = "--mlflow-url" ] && mlflow_url="$arg"
  [ "$prev" = "--listen" ] && listen="$arg"
  prev="$arg"
done

install_packages "${BUILD_PACKAGES[@]}"
log "building (build/)"
build_preset release "$REPO_ROOT/build" -DPROXY_BUILD_TESTS=OFF

state="$REPO_ROOT/.state"
mkdir -p "$state"
if [ -z "$mlflow_url" ]; then
  port="${MLFLOW_PORT:-5000}"
  mlflow_url="http://127.0.0.1:$port"
  if curl -fsS "$mlflow_url/health" >/dev/null 2>&1; then
    log "MLflow already answers at $mlflow_url; using it"
  else
    install_packages python3 python3-venv curl
    ensure_venv
    mkdir -p "$state/mlflow/artifacts"
    log "starting MLflow at $mlflow_url (SQLite store in .state/mlflow/, log in .state/mlflow/server.log)"
    (cd "$state/mlflow" && nohup "$VENV_DIR/bin/mlflow" server \
        --backend-store-uri "sqlite:///$state/mlflow/mlflow.db" \
        --artifacts-destination "$state/mlflow/artifacts" \
        --host 127.0.0.1 --port "$port" >"$state/mlflow/server.log" 2>&1 &
      echo $! >"$state/mlflow/server.pid")
    for _ in $(seq 1 120); do
      curl -fsS "$mlflow_url/health" >/dev/null 2>&1 && break
      if ! kill -0 "$(cat "$state/mlflow/server.pid")" 2>/dev/null; then
        tail -n 30 "$state/mlflow/server.log" >&2
        log "MLflow failed to start (log above)"; exit 1
      fi
      sleep 1
    done
    curl -fsS "$mlflow_url/health" >/dev/null || { log "MLflow did not answer /health within 120 s"; exit 1; }
  fi
  set -- --mlflow-url "$mlflow_url" "$@"
fi

cat >&2 <<MSG

  MLflow UI:       $mlflow_url
  OTLP endpoint:   http://$listen/v1/traces   (Koog's default is 127.0.0.1:4318; others:
                   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://$listen/v1/traces)
  Stop with Ctrl-C (the proxy drains its queue first).

MSG
exec "$REPO_ROOT/build/src/otlp-mlflow-proxy" "$@"
