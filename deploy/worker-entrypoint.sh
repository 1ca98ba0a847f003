#!/bin/sh
# The worker image's entry point: the first argument chooses the task queue(s) this container serves.
#   docker run IMAGE orchestration | cpu | io | all
# Everything else comes from the environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
# TEMPORAL_TLS_*, TEMPORAL_PROFILE (connection), CURATE_S3_ENDPOINT and AWS_* (store), CURATE_METRICS_PORT
# (Prometheus /metrics, 9464 in the image), CURATE_MAX_SHARD_READS, CURATE_CPU_SLOTS, CURATE_CPU_THREADS.
set -eu
app="${CURATE_APP_DIR:-/app}"
queue="${1:-all}"
case "$queue" in
  -h|--help)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 0 ;;
  orchestration|cpu|io|all) ;;
  *)
    echo "curate-worker: unknown queue '$queue': use orchestration, cpu, io or all" >&2
    exit 2 ;;
esac
if [ ! -f "$app/dist/workers/$queue.js" ]; then
  echo "curate-worker: $app/dist/workers/$queue.js is missing: the image was not built (npx tsc)" >&2
  exit 2
fi
exec node "$app/dist/workers/$queue.js"
