#!/bin/sh
# The container's health check: `tgstats show --check` (one line: fresh, or why not), once
# the init's start sequence is over. While the init checks the configuration, waits for
# Redis and runs the pass at start, it keeps /run/tgstats/starting: the check waits for it
# to go (bounded by the HEALTHCHECK timeout), so the first result is that pass's, seconds
# after it ends, and never a failure counted while it runs. A bad configuration leaves its
# one line in /run/tgstats/problem: printed, and the container is unhealthy.
run=/run/tgstats
while [ -e "$run/starting" ]; do
  sleep 0.5
done
if [ -s "$run/problem" ]; then
  cat "$run/problem"
  exit 1
fi
exec tgstats show --check
