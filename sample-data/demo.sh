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

# Records: a recipient key for protected identities, entities, a testimony, links.
records="$here/records"
step evidence keys recipient add prosecutor-a --passphrase-file "$pass"
step evidence incident add --from "$records/incident.yaml" --passphrase-file "$pass"
step evidence facility add --from "$records/facility.yaml" --passphrase-file "$pass"
step evidence perpetrator add --from "$records/perpetrator.yaml" --passphrase-file "$pass"
step evidence testimony add "$records/testimony-W-017.yaml" --passphrase-file "$pass"
bus="$(sha256sum "$here/files/photo-bus-departure.jpg" | cut -c1-16)"
gate="$(sha256sum "$here/files/photo-facility-gate.jpg" | cut -c1-16)"
list="$(sha256sum "$here/files/transfer-list-17-2022.pdf" | cut -c1-16)"
step evidence link "$bus" --incident INC-0001 --reason "shows the departure of the buses" \
  --passphrase-file "$pass"
step evidence link "$list" --incident INC-0001 --perpetrator PER-0001 \
  --reason "transfer list signed by the official" --passphrase-file "$pass"
step evidence link "$gate" --facility FAC-0001 --reason "gate of the camp" --passphrase-file "$pass"
step evidence link W-017 --incident INC-0001 --facility FAC-0001 --perpetrator PER-0001 \
  --reason "the witness describes the transfer and the camp" --passphrase-file "$pass"
step evidence list --incident INC-0001
step evidence timeline --facility FAC-0001
step evidence testimony show W-017
step evidence verify

# Submission bundle of incident INC-0001 (restricted profile: pseudonyms only), then its
# offline audit with the exporting key obtained separately.
key_id="$(evidence keys list --json | sed -n 's/.*"key_id": "\(investigator-a+[0-9a-f]*\)".*/\1/p' | head -n 1)"
evidence keys export "$key_id" --format note > "$out/investigator-a.pub"
step evidence export --incident INC-0001 --profile restricted --out "$out/bundle" --zip \
  --passphrase-file "$pass"
step evidence audit "$out/bundle" --trust "$out/investigator-a.pub"
step evidence audit "$out/bundle.zip" --trust "$out/investigator-a.pub"
