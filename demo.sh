#!/usr/bin/env bash
# Loket local demo: a sync server and three enrolled kiosks on loopback.
#
#   ./demo.sh            build (release) and start everything; Ctrl-C stops it
#   ./demo.sh --fresh    forget the previous demo's data first
#
# Data lives in ./demo-data/ (server/, kiosk1/, kiosk2/, kiosk3/).
set -euo pipefail
cd "$(dirname "$0")"

DATA=demo-data
SERVER_ADDR=127.0.0.1:8443
KIOSK_PORTS=(8081 8082 8083)         # the citizens' touch screens (and the local API)
STAFF_PORTS=(9081 9082 9083)         # each kiosk's staff console, on an address of its own
KELURAHAN=(12.71.01.1001 12.71.01.1001 12.71.02.1001)   # Pasar Baru, Pasar Baru, a kelurahan in Medan Area
ADMIN_USER=admin
ADMIN_PASSWORD=admin-demo-123
STAFF_ID=198503122010011002
STAFF_PASSWORD=petugas-demo-1
AGENCY_USER=dukcapil
AGENCY_PASSWORD=dukcapil-demo-1   # an agency user of Disdukcapil, for the agency portal

if [[ "${1:-}" == "--fresh" ]]; then rm -rf "$DATA"; fi
command -v curl >/dev/null || { echo "demo.sh needs curl (apt-get install curl)"; exit 1; }

echo "== building (release; the first build takes a few minutes)"
cargo build --release --quiet -p loket-sync-server -p loket-kiosk
BIN=target/release

pids=()
cleanup() {
  echo; echo "== stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_line() { # file, prefix
  for _ in $(seq 1 200); do
    if grep -q "^$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1"; exit 1
}

mkdir -p "$DATA"
if [[ ! -f "$DATA/server/server.db" ]]; then
  printf '%s\n' "$ADMIN_PASSWORD" > "$DATA/admin-password"
  "$BIN/sync-server" init --data "$DATA/server" --admin-user "$ADMIN_USER" --admin-password-file "$DATA/admin-password" >/dev/null
  printf '%s\n' "$AGENCY_PASSWORD" > "$DATA/agency-password"
  "$BIN/sync-server" add-user --data "$DATA/server" --username "$AGENCY_USER" --role agency --agency DISDUKCAPIL \
    --password-file "$DATA/agency-password" >/dev/null
fi
"$BIN/sync-server" serve --data "$DATA/server" --listen "$SERVER_ADDR" >"$DATA/server.out" 2>"$DATA/server.log" &
pids+=($!)
wait_line "$DATA/server.out" "listening on"
SERVER=https://$SERVER_ADDR
CA=$DATA/server/tls/ca.pem

TOKEN=$(curl -s --cacert "$CA" -X POST "$SERVER/api/login" -H 'content-type: application/json' \
  -d "{\"username\":\"$ADMIN_USER\",\"password\":\"$ADMIN_PASSWORD\"}" | sed 's/.*"token":"\([0-9a-f]*\)".*/\1/')

for i in 0 1 2; do
  kel=${KELURAHAN[$i]}
  dir="$DATA/kiosk$((i + 1))"
  # The office's staff, in the roster the server owns (reaches kiosks at sync).
  curl -s --cacert "$CA" -X PUT "$SERVER/api/admin/rosters/$kel/staff/$STAFF_ID" \
    -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"name\":\"Rina Siregar\",\"role\":\"supervisor\",\"password\":\"$STAFF_PASSWORD\"}" >/dev/null
  if [[ ! -f "$dir/kiosk.db" ]]; then
    code=$("$BIN/sync-server" enroll-code --data "$DATA/server" --kelurahan "$kel" | sed -n 1p)
    "$BIN/kiosk" enroll --data "$dir" --server "$SERVER" --ca "$CA" --code "$code"
  fi
  "$BIN/kiosk" serve --data "$dir" --listen "127.0.0.1:${KIOSK_PORTS[$i]}" \
    --staff-listen "127.0.0.1:${STAFF_PORTS[$i]}" >"$dir.out" 2>"$dir.log" &
  pids+=($!)
  wait_line "$dir.out" "staff console on"
done

cat <<EOF

Loket demo is running (logs in $DATA/*.log). Ctrl-C stops everything.

  sync server   $SERVER   (CA: $CA)
                central web app: $SERVER/   (accept the demo CA, or add $CA to the browser)
                admin login: $ADMIN_USER / $ADMIN_PASSWORD;  Disdukcapil agency: $AGENCY_USER / $AGENCY_PASSWORD
  kiosk 1       http://127.0.0.1:${KIOSK_PORTS[0]}/   kelurahan ${KELURAHAN[0]}   <- the citizen screen (touch screen)
                http://127.0.0.1:${STAFF_PORTS[0]}/staf   staff console (its own address; open it in another
                                                  browser window or profile, never on the citizen screen)
  kiosk 2       http://127.0.0.1:${KIOSK_PORTS[1]}/   staff http://127.0.0.1:${STAFF_PORTS[1]}/staf   kelurahan ${KELURAHAN[1]}
  kiosk 3       http://127.0.0.1:${KIOSK_PORTS[2]}/   staff http://127.0.0.1:${STAFF_PORTS[2]}/staf   kelurahan ${KELURAHAN[2]}
                staff login on every kiosk: NIP $STAFF_ID / $STAFF_PASSWORD

Try (README "What to try" has more):
  curl -s -X POST http://127.0.0.1:${KIOSK_PORTS[0]}/api/requests -H 'content-type: application/json' \\
    -d '{"service":"SKD","applicant":{"name":"Budi Santoso","nik":"1271010101900003"}}'
  curl -s --cacert $CA $SERVER/api/admin/requests -H "authorization: Bearer $TOKEN"
EOF
wait
