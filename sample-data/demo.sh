#!/usr/bin/env bash
# The demo behind `make demo`: a fictional case from init to audited bundle.
# Everything is written under ./demo-out (removed first); keys live outside the case directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${DEMO_OUT:-$PWD/demo-out}"
rm -rf "$out"
mkdir -p "$out"
export EVIDENCE_HOME="$out/home"          # where the investigator's private key is kept
export EVIDENCE_CASE="$out/case"
pass="$out/passphrase.txt"
printf 'correct horse battery staple\n' > "$pass"
chmod 600 "$pass"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step evidence init "$EVIDENCE_CASE" --case-id UA-DEMO-0001 --title "Demonstration case (fictional)" \
  --key-name investigator-a --organisation "Example Documentation NGO" --passphrase-file "$pass"
step evidence ingest --recursive "$here/files" --source "Example Documentation NGO field team" \
  --collected-by "Investigator A" --collected-at 2026-03-02 --method handed-over \
  --confidentiality restricted --tag demo --passphrase-file "$pass"
step evidence list
step evidence verify
