#!/usr/bin/env bash
# The main job timed back to back: `python -m jaxhw` at an earlier commit (default bb16933, the last one
# that trained problem 5 with 3 seeds, one model at a time) with --no-compile-cache, then this tree with a
# fresh compile cache (cold) and again with the same cache (warm). Wall time from start to exit per run;
# each report's report.json has the time per stage.
#   bash benchmarks/main_job.sh [EARLIER_COMMIT]        # about a quarter of an hour on 2 cores
cd "$(dirname "$0")/.."
earlier=${1:-bb16933}
work=${TMPDIR:-/tmp}/jaxhw_main_job
rm -rf "$work" && mkdir -p "$work"
git worktree add --detach "$work/earlier" "$earlier" > /dev/null 2>&1 || { echo "cannot check out $earlier"; exit 1; }
trap 'git worktree remove --force "$work/earlier"' EXIT
python=$(command -v "${PYTHON:-python}")
run() {  # name, directory, arguments...
  name=$1; dir=$2; shift 2
  start=$(date +%s.%N)
  (cd "$dir" && "$python" -m jaxhw --out "$work/report_$name" "$@" > "$work/$name.log" 2>&1)
  rc=$?
  echo "$name rc=$rc wall=$(echo "$(date +%s.%N) - $start" | bc) s load=$(cut -d' ' -f1 /proc/loadavg)" \
       "commit=$(git -C "$dir" rev-parse --short HEAD)"
}
run earlier_cold "$work/earlier" --no-compile-cache
run this_cold "$PWD" --compile-cache "$work/cache"
run this_warm "$PWD" --compile-cache "$work/cache"
