#!/bin/sh
# No arguments: the schedule. itam_tgstats.commands.container checks the configuration
# (a bad value: the container waits, unhealthy, naming it), picks the crontab (the shipped
# one at the default TG_UPDATE_INTERVAL, the one for another interval, or one mounted at
# /etc/tgstats/crontab), runs a pass at start (unless the last success is recent or
# TG_RUN_AT_START=0; it waits up to 30 s for Redis), then supercronic; it stays PID 1,
# passes `docker stop`'s SIGTERM on to the running pass and reaps orphans.
# With arguments: run them instead, e.g. `tgstats show` or `tgstats session`.
# SUPERCRONIC_ARGS adds supercronic flags, e.g. "-prometheus-listen-address 0.0.0.0:9746".
set -eu
if [ "$#" -eq 0 ]; then
  exec /usr/local/bin/python -m itam_tgstats.commands.container
fi
exec "$@"
