#!/bin/sh
# Screenshot an HTML report in headless Chromium, to check how it renders for a reader.
#
#   bench/screenshot-report.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]
#
# Needs Chromium (Debian: apt-get install -y chromium). The report is self-contained, so
# no network is used; the flags below also stop Chromium's own background traffic.
set -eu
report=${1:?usage: $0 REPORT.html [OUT.png] [WIDTHxHEIGHT]}
out=${2:-/tmp/report.png}
size=${3:-1280x2000}
case "$report" in /*) ;; *) report="$(pwd)/$report" ;; esac
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars \
  --screenshot="$out" --window-size="$(echo "$size" | tr x ,)" "file://$report"
echo "screenshot: $out"
