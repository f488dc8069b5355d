#!/usr/bin/env bash
# Builds clients/go/build/maas-go from the .proto files, offline, with Debian's Go packages only:
#   protoc + protoc-gen-go + protoc-gen-go-grpc generate every proto under protos/ into a GOPATH layout
#   (build/gopath/src/maasgen/<proto dir>), then `go build` in GOPATH mode (GO111MODULE=off) against that and
#   /usr/share/gocode (google.golang.org/grpc, google.golang.org/protobuf, genproto). Nothing is downloaded.
# Generated code is a build output (build/ is ignored by git). Rebuilds only when a proto or a .go file changed.
# Needs: protobuf-compiler protoc-gen-go protoc-gen-go-grpc golang-go golang-google-grpc-dev
#        golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev (tools/system-deps.sh installs them).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PROTOS="$ROOT/protos"
BUILD="$HERE/build"
GEN="$BUILD/gopath/src"
BIN="$BUILD/maas-go"
IMPORT_ROOT=maasgen   # generated packages: maasgen/maas/nlp/v1 (package nlpv1), maasgen/inference (inference), ...

for tool in protoc protoc-gen-go protoc-gen-go-grpc go; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing: run tools/system-deps.sh (make system)" >&2; exit 1; }
done

mapfile -t PROTO_FILES < <(cd "$PROTOS" && find . -name '*.proto' | sed 's|^\./||' | sort)
if [ -x "$BIN" ] && [ -z "$(find "$PROTOS" "$HERE/maas-go" "$HERE/build.sh" -newer "$BIN" \( -name '*.proto' -o -name '*.go' -o -name build.sh \) -print -quit)" ]; then
  echo "maas-go is up to date ($BIN)"
  exit 0
fi

# The protos carry no go_package option (they are shared with every language): map each file to its Go package
# here. Package name: the directory's components after "maas", joined (maas/nlp/v1 -> nlpv1).
MAP=()
for f in "${PROTO_FILES[@]}"; do
  dir="$(dirname "$f")"
  name="$(echo "${dir#maas/}" | tr -d '/._-')"
  MAP+=("M$f=$IMPORT_ROOT/$dir;$name")
done
GO_OPTS="$(IFS=,; echo "paths=import,${MAP[*]}")"

rm -rf "$GEN" && mkdir -p "$GEN"
protoc -I"$PROTOS" --go_out="$GO_OPTS:$GEN" --go-grpc_out="$GO_OPTS:$GEN" "${PROTO_FILES[@]}"

cd "$HERE/maas-go"
GO111MODULE=off GOPATH="$BUILD/gopath:/usr/share/gocode" GOFLAGS="" go build -o "$BIN" .
echo "built $BIN from ${#PROTO_FILES[@]} protos"
