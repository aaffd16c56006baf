#!/usr/bin/env bash
# Writes every deterministic output of the simulator into one folder, so a refactoring can be
# proved behaviour-preserving by `diff -r` of two such folders (issue 13):
#   scripts/behaviour-fingerprint.sh OUT [SEEDS]
# - traces and summaries (manifest removed: it holds wall time) of every scenario in scenarios/
# - reproduce all --quick: every CSV and SVG
# - the swarm (check) over SEEDS (default 0..2000) and each canary over 0..1000
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: behaviour-fingerprint.sh OUT [SEEDS]}
SEEDS=${2:-0..2000}
BIN=target/release/hovercraft-sim
cargo build --release -q -p hovercraft-sim
rm -rf "$OUT"; mkdir -p "$OUT"/{runs,reproduce,check}
strip_manifest() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("manifest",None); print(json.dumps(d,indent=1,sort_keys=True))' "$1"; }
for f in scenarios/*.json scenarios/faults/*.json scenarios/runtime/*.json; do
  name=$(echo "$f" | tr / _)
  $BIN run "$f" --out "$OUT/runs/$name.d" --trace "$OUT/runs/$name.trace" > "$OUT/runs/$name.stdout"
  strip_manifest "$OUT/runs/$name.d/summary.json" > "$OUT/runs/$name.summary"
  rm -rf "$OUT/runs/$name.d"
  # The first stdout line holds wall time.
  sed -i -E 's/in [0-9.]+ s wall/in X s wall/' "$OUT/runs/$name.stdout"
done
$BIN reproduce all --quick --out "$OUT/reproduce.d" > /dev/null 2>&1
( cd "$OUT/reproduce.d" && find . -name '*.csv' -o -name '*.svg' ) | while read -r p; do
  mkdir -p "$OUT/reproduce/$(dirname "$p")"; cp "$OUT/reproduce.d/$p" "$OUT/reproduce/$p"; done
rm -rf "$OUT/reproduce.d"
set +e
$BIN check --seeds "$SEEDS" --out "$OUT/check/swarm" > "$OUT/check/swarm.stdout" 2>&1; echo "exit $?" >> "$OUT/check/swarm.stdout"
for canary in commit-previous-term vote-not-persisted reply-before-commit skip-prev-log-check apply-twice-after-recovery deposed-leader-serves-reads no-request-dedupe; do
  $BIN check --seeds 0..1000 --canary "$canary" --out "$OUT/check/$canary" > "$OUT/check/$canary.stdout" 2>&1
  echo "exit $?" >> "$OUT/check/$canary.stdout"
done
# Per-seed traces of one swarm seed in ten (the swarm itself prints only totals).
for s in $(seq 0 10 1999); do
  $BIN replay --seed "$s" --trace "$OUT/check/t" > "$OUT/check/replay.tmp" 2>&1
  echo "seed $s $(sha256sum < "$OUT/check/t" | cut -c1-16) $(tail -1 "$OUT/check/replay.tmp")" >> "$OUT/check/replays.txt"
done
rm -f "$OUT/check/t" "$OUT/check/replay.tmp"
set -e
sed -i -E 's/[0-9.]+ ?s wall/X s wall/g; s/in [0-9.]+ ?s\b/in X s/g; s/\([0-9.]+ simulated s per wall s\)/(X simulated s per wall s)/' "$OUT"/check/*.stdout
sed -i "s#$OUT/#OUT/#g" "$OUT"/check/*.stdout "$OUT"/runs/*.stdout
echo "fingerprint written to $OUT"
