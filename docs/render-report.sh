#!/usr/bin/env bash
# Screenshots a report.html with headless Chromium, to check the self-contained page renders (CI and by eye).
# Usage: docs/render-report.sh path/to/report.html [out.png] [width,height]
# Needs chromium (Debian: apt-get install -y chromium). Network features are disabled: the page must need nothing.
set -euo pipefail
if [[ $# -lt 1 ]]; then echo "usage: $0 report.html [out.png] [width,height]" >&2; exit 2; fi
html="$(realpath "$1")"
out="$(realpath -m "${2:-${html%.html}.png}")"
size="${3:-1200,2000}"
[[ -f "$html" ]] || { echo "$html: not found" >&2; exit 2; }
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[[ -n "$browser" ]] || { echo "chromium not found (apt-get install -y chromium)" >&2; exit 3; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --screenshot="$out" --window-size="$size" \
  "file://$html" >/dev/null 2>&1
[[ -s "$out" ]] || { echo "no screenshot written to $out" >&2; exit 1; }
echo "$out"
