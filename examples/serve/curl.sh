#!/usr/bin/env bash
# A curl session with `riskguard serve` (run from the repository root).
#
#   riskguard serve -p policies/default.yaml --token-file /tmp/tokens.txt &   # see step 0
#   bash examples/serve/curl.sh
#
# Every answer is JSON; refusals are RFC 9457 problem documents (application/problem+json).
set -eu   # no pipefail: `| head` cuts long answers short on purpose
URL=${RISKGUARD_URL:-http://127.0.0.1:8181}
SNAP=examples/snapshots/binance-two-cross.json
ORDER=examples/orders/buy-btc.json

# 0. Tokens (once): generate a random token, keep it, store only its hash for the server.
#      openssl rand -hex 32 > /tmp/bot.token
#      riskguard serve --hash-token < /tmp/bot.token | sed 's/ bot$/ bot admin/' > /tmp/tokens.txt
TOKEN=${RISKGUARD_TOKEN:-$(cat /tmp/bot.token 2>/dev/null || true)}
AUTH=()
[ -n "$TOKEN" ] && AUTH=(-H "Authorization: Bearer $TOKEN")
J=(-H 'Content-Type: application/json')

echo '# 1. Is it up, and is a valid policy loaded?'
curl -s "$URL/healthz"; echo
curl -s "$URL/readyz"; echo

echo '# 2. Which policy decides?'
curl -s "${AUTH[@]}" "$URL/v1/policy" | head -c 300; echo

echo '# 3. Check an order against a full snapshot (allow / resize / deny)'
curl -s "${AUTH[@]}" "${J[@]}" "$URL/v1/check" \
  -d "{\"snapshot\": $(cat $SNAP), \"order\": $(cat $ORDER)}" | head -c 400; echo

echo '# 4. Store the account once, then send only orders'
curl -s "${AUTH[@]}" "${J[@]}" "$URL/v1/snapshots/main" -d @"$SNAP"; echo
curl -s "${AUTH[@]}" "${J[@]}" "$URL/v1/check" \
  -d "{\"account\": \"main\", \"order\": $(cat $ORDER)}" | head -c 400; echo

echo '# 5. How much would fit? The account figures? Why?'
curl -s "${AUTH[@]}" "${J[@]}" "$URL/v1/max-order-amount" -d "{\"account\": \"main\", \"order\": $(cat $ORDER)}"; echo
curl -s "${AUTH[@]}" "${J[@]}" "$URL/v1/metrics" -d '{"account": "main"}' | head -c 300; echo
curl -s "${AUTH[@]}" "${J[@]}" "$URL/v1/explain" -d "{\"account\": \"main\", \"order\": $(cat $ORDER)}" | head -c 300; echo

echo '# 6. A bad order: 422 with the JSON path of each problem'
curl -s "${AUTH[@]}" "${J[@]}" "$URL/v1/check" \
  -d '{"account": "main", "order": {"symbol": "BTC/USDT:USDT", "side": "up", "amount": -1}}'; echo

echo '# 7. Kill switch (admin token): halt, check, resume'
curl -s "${AUTH[@]}" "${J[@]}" -X PUT "$URL/v1/trading-state" -d '{"tradingState": "halted", "reason": "curl demo"}'; echo
curl -s "${AUTH[@]}" "${J[@]}" "$URL/v1/check" -d "{\"account\": \"main\", \"order\": $(cat $ORDER)}" | head -c 200; echo
curl -s "${AUTH[@]}" "${J[@]}" -X PUT "$URL/v1/trading-state" -d '{"tradingState": "active"}'; echo

echo '# 8. Prometheus metrics'
curl -s "${AUTH[@]}" "$URL/metrics" | grep '^riskguard_decisions_total'
