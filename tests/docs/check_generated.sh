#!/usr/bin/env bash
# check_generated.sh - docs generated from the config schema are current.
#
# docs/configuration.md must contain every row that
# `jetfleet config schema --markdown` prints, and .env.example must end with
# exactly what `jetfleet config schema --env` prints. Regenerate with:
#   build/src/app/jetfleet config schema --markdown   (paste the table)
#   build/src/app/jetfleet config schema --env        (below the header)
set -u
bin=${JF_BIN:?JF_BIN not set}
root=${JF_SRC_ROOT:?JF_SRC_ROOT not set}
pass=0 fail=0

while IFS= read -r row; do
  if grep -qxF -- "$row" "$root/docs/configuration.md"; then
    pass=$((pass + 1))
  else
    echo "docs/configuration.md lacks the current row: $row"
    fail=$((fail + 1))
  fi
done < <("$bin" config schema --markdown)

want=$("$bin" config schema --env)
lines=$(printf '%s\n' "$want" | wc -l)
have=$(tail -n "$lines" "$root/.env.example")
if [ "$have" == "$want" ]; then
  pass=$((pass + 1))
else
  echo ".env.example differs from \`jetfleet config schema --env\`:"
  diff <(printf '%s\n' "$want") <(printf '%s\n' "$have") | head -20
  fail=$((fail + 1))
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
