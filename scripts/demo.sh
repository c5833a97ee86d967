#!/usr/bin/env bash
# make demo: start the Qdrant emulator on free ports, run
# `snappipe apply configs/sample.yaml` against it, show the snapshot file,
# stop the emulator. Exit status is apply's.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp) err=$(mktemp)
./bin/qdrant-emulator --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 >"$out" 2>"$err" &
emu=$!
cleanup() { kill "$emu" 2>/dev/null || true; wait "$emu" 2>/dev/null || true; rm -f "$out" "$err"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  grep -q '^ready ' "$out" && break
  if ! kill -0 "$emu" 2>/dev/null; then cat "$err" >&2; echo "emulator failed to start" >&2; exit 1; fi
  sleep 0.1
done
ready=$(grep '^ready ' "$out") || { cat "$err" >&2; echo "emulator not ready" >&2; exit 1; }
grpc=${ready#*grpc=}; grpc=${grpc%% *}
http=${ready#*http=}
echo "emulator (test double, not Qdrant): $ready"

export QDRANT_URL="http://$http" QDRANT_GRPC_PORT="${grpc##*:}"
# A demo run always starts over, so it can be repeated.
./bin/snappipe apply configs/sample.yaml --full-refresh -y --progress never

snap=$(ls -t snapshots/*.snapshot | head -1)
echo
echo "snapshot file: $snap"
echo "size:          $(stat -c %s "$snap") bytes"
echo "sha256:        $(sha256sum "$snap" | cut -d' ' -f1)"
