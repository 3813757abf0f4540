#!/usr/bin/env bash
# jaxhw.timeseries --tasks motif,order --models lstm,transformer with --seeds 1 and --seeds 8, alternating, back to back.
cd "$(dirname "$0")/.."
for rep in 1 2; do
  for seeds in 1 8; do
    start=$(date +%s.%N)
    python -m jaxhw.timeseries --tasks motif,order --models lstm,transformer --seeds $seeds --no-compile-cache --out "${TMPDIR:-/tmp}"/ts_s$seeds > "${TMPDIR:-/tmp}"/ts_s$seeds.log 2>&1
    rc=$?
    end=$(date +%s.%N)
    echo "rep $rep seeds $seeds rc=$rc wall=$(echo "$end - $start" | bc) load=$(cut -d' ' -f1 /proc/loadavg)"
  done
done
