#!/usr/bin/env bash
# Vendors Swagger UI (the swagger-ui-dist npm package) into khala/gateway/v2/swagger_ui/ for
# GET /docs/. The vendored files are committed: a fresh machine needs no npm. Run this only to
# change the version: bash scripts/vendor-swagger-ui.sh [VERSION]
set -euo pipefail
VERSION="${1:-5.32.0}"
DEST="$(cd "$(dirname "$0")/.." && pwd)/khala/gateway/v2/swagger_ui"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null && tar xzf ./*.tgz)
mkdir -p "$DEST"
rm -f "$DEST"/*
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
    if [ -f "$WORK/package/$f" ]; then cp "$WORK/package/$f" "$DEST/"; fi
done
echo "$VERSION" > "$DEST/VERSION"
echo "vendored swagger-ui-dist $VERSION into $DEST"
