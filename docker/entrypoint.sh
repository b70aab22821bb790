#!/bin/sh
# No arguments: run the 15-minute schedule under supercronic (PID 1, exec form).
# With arguments: run them instead, e.g. `tgstats show` or `tgstats session`.
# SUPERCRONIC_ARGS adds supercronic flags, e.g. "-prometheus-listen-address 0.0.0.0:9746".
set -eu
if [ "$#" -eq 0 ]; then
  # shellcheck disable=SC2086 # word splitting of SUPERCRONIC_ARGS is intended
  exec supercronic -passthrough-logs ${SUPERCRONIC_ARGS:-} /etc/tgstats/crontab
fi
exec "$@"
