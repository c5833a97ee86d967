#!/usr/bin/env bash
# make mutation: mutation testing with gremlins over the engine, the stages
# and the readers. Each package is mutated and tested with its own tests
# (gremlins' default mode); results go to .cache/mutation/PKG.json and a
# summary line per package to stdout. Outside make test: it takes a while.
set -uo pipefail
cd "$(dirname "$0")/.."
GREMLINS_VERSION=${GREMLINS_VERSION:-v0.6.0}
GOBIN_DIR=$(pwd)/.cache/bin
mkdir -p "$GOBIN_DIR" .cache/mutation
if [ ! -x "$GOBIN_DIR/gremlins" ]; then
  GOBIN="$GOBIN_DIR" go install "github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION" || exit 1
fi
PKGS=${PKGS:-"pipeline stages/batch stages/decode stages/download stages/upsert stages/snapshot stages/fetch internal/npy internal/pq internal/httpget internal/httpra internal/atomicfile internal/wire"}
for p in $PKGS; do
  out=.cache/mutation/$(echo "$p" | tr / _).json
  echo "== $p"
  "$GOBIN_DIR/gremlins" unleash "./$p" --workers 1 --timeout-coefficient 10 -o "$out" -S lt 2>&1 |
    grep -E 'LIVED|TIMED OUT|Killed:|Mutator coverage|Test efficacy|Timed out|Not covered' || true
done
