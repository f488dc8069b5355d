#!/usr/bin/env bash
# Builds gateway/build/maas-gateway from gateway/cmd/maas-gateway, offline, with Debian's Go packages only: `go build`
# in GOPATH mode (GO111MODULE=off) against /usr/share/gocode (google.golang.org/grpc 1.33, google.golang.org/protobuf,
# genproto, the Prometheus client). Nothing is downloaded and nothing is generated: the gateway forwards messages
# without decoding them, and the few KServe fields it reads or writes are handled with protowire.
#   gateway/build.sh         build, when a .go file or this script is newer than the binary
#   gateway/build.sh test    go vet + go test (the unit tests beside the sources)
# Needs: golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
#        golang-github-prometheus-client-golang-dev (tools/system-deps.sh installs them).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$HERE/cmd/maas-gateway"
BIN="$HERE/build/maas-gateway"
export GO111MODULE=off GOPATH="$HERE/build/gopath:/usr/share/gocode" GOFLAGS="" CGO_ENABLED=0

if [ "${1:-}" != "test" ] && [ -x "$BIN" ] && \
   [ -z "$(find "$SRC" "$HERE/build.sh" -newer "$BIN" \( -name '*.go' -o -name build.sh \) -print -quit)" ]; then
  echo "maas-gateway is up to date ($BIN)"
  exit 0
fi
command -v go >/dev/null || { echo "build.sh: go is missing: run tools/system-deps.sh (make system)" >&2; exit 1; }
[ -d /usr/share/gocode/src/github.com/prometheus/client_golang ] || {
  echo "build.sh: Debian's Go packages are missing: run tools/system-deps.sh (make system)" >&2; exit 1; }

mkdir -p "$HERE/build/gopath"
cd "$SRC"
if [ "${1:-}" = "test" ]; then
  go vet .
  exec go test -count=1 .
fi
go build -trimpath -o "$BIN" .
echo "built $BIN"
