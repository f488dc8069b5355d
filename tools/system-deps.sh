#!/usr/bin/env bash
# Debian packages the suite needs beyond Python: FluidSynth and a General MIDI soundfont (music-generator's
# WAV renders), PostgreSQL (music-recommender's server-grade store, and its tests), and Go with Debian's Go
# packages (the gateway, the Go example client). Idempotent: installs only what is missing; needs root (or
# sudo) the first time.
set -euo pipefail
need=()
command -v fluidsynth >/dev/null || need+=(fluidsynth)
[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The example clients (make clients): Node.js, and Go with protobuf/gRPC from Debian (GOPATH build, no downloads).
# protoc-gen-go (APIv2) and golang/protobuf 1.5: the 1.3 ones (golang-goprotobuf-dev) cannot compile proto3 `optional`.
command -v node >/dev/null || need+=(nodejs npm)
command -v go >/dev/null || need+=(golang-go)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v protoc-gen-go-grpc >/dev/null || need+=(protoc-gen-go-grpc)
[ -d /usr/share/gocode/src/google.golang.org/grpc ] || need+=(golang-google-grpc-dev)
# The gateway (Go, gateway/build.sh) also needs the Prometheus client.
for pkg in protoc-gen-go golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev \
           golang-github-prometheus-client-golang-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
