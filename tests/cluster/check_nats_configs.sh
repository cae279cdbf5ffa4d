#!/usr/bin/env bash
# check_nats_configs.sh - deploy/nats is what `scripts/cluster render` makes
# (the same code as the tested local clusters), and nats-server accepts
# every server config in it (`nats-server -t`).
set -euo pipefail
root=${1:?usage: check_nats_configs.sh ROOT}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$root/scripts/cluster" render --out "$tmp" >/dev/null
fail=0
for f in "$tmp"/*.conf; do
  name=$(basename "$f")
  if ! cmp -s "$f" "$root/deploy/nats/$name"; then
    echo "FAIL: deploy/nats/$name differs from \`scripts/cluster render\`; re-render it"
    diff -u "$root/deploy/nats/$name" "$f" | head -20 || true
    fail=1
  fi
done
for f in "$root"/deploy/nats/*-[0-9].conf; do
  if ! out=$(cd "$root/deploy/nats" && nats-server -c "$(basename "$f")" -t 2>&1); then
    echo "FAIL: nats-server rejects $(basename "$f"): $out"
    fail=1
  fi
done
n=$(ls "$root"/deploy/nats/*-[0-9].conf | wc -l)
[ "$n" -eq 9 ] || { echo "FAIL: want 9 server configs in deploy/nats, found $n"; fail=1; }
[ $fail -eq 0 ] && echo "ok: $n server configs rendered by scripts/cluster and valid for nats-server"
exit $fail
