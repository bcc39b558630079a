#!/usr/bin/env bash
# Vendors Prism (the prismjs npm package: its core and the grammars of Khala's language presets)
# into khala/gateway/static/vendor/prism/ for the task page's source view. Only the core's
# `Prism.tokenize` is used: the page builds its own elements from the tokens with textContent.
# The vendored files are committed: a fresh machine needs no npm. Run this only to change the
# version: bash scripts/vendor-prism.sh [VERSION]
set -euo pipefail
VERSION="${1:-1.30.0}"
DEST="$(cd "$(dirname "$0")/.." && pwd)/khala/gateway/static/vendor/prism"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "prismjs@$VERSION" >/dev/null && tar xzf ./*.tgz)
mkdir -p "$DEST"
rm -f "$DEST"/*
cp "$WORK/package/components/prism-core.min.js" "$DEST/"
# clike first: c, java and go extend it; cpp extends c
for lang in clike c cpp java go rust python; do
    cp "$WORK/package/components/prism-$lang.min.js" "$DEST/"
done
cp "$WORK/package/LICENSE" "$DEST/"
echo "$VERSION" > "$DEST/VERSION"
echo "vendored prismjs $VERSION into $DEST"
