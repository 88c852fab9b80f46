#!/usr/bin/env bash
# Every route of the registry's REST API, called with curl against a running server,
# plus one MCP JSON-RPC exchange over Streamable HTTP.
#
#   BASE_URL=http://127.0.0.1:8080 bash examples/mcp_api_examples.sh
#
# Environment:
#   BASE_URL       the server (default http://127.0.0.1:8080)
#   ADMIN_API_KEY  sent as `Authorization: Bearer` on every request, when the server sets
#                  ADMIN_API_KEYS (an admin key is accepted on /mcp too)
#   IMPORT_URL     an upstream MCP endpoint: also runs POST /admin/import against it, and
#                  deletes the imported tools again at the end
#   SHOW_LINES     lines of each answer to print (default 25; 0 prints none)
#
# Each call prints its method and path, checks the status code (and stops with the answer's
# body when it differs) and pretty-prints JSON answers. The tools it registers carry a
# unique suffix (date and process id) and are deleted at the end, also when a step fails,
# so the script can run again and again against the same server.
set -euo pipefail

BASE_URL="${BASE_URL:-http://127.0.0.1:8080}"
BASE_URL="${BASE_URL%/}"
SHOW_LINES="${SHOW_LINES:-25}"
SUFFIX="$(date +%Y%m%d%H%M%S)_$$"
CATEGORY="examples-$SUFFIX"
CALC="examples.calc_$SUFFIX"
WEATHER="examples.weather_$SUFFIX"

AUTH=()
if [[ -n ${ADMIN_API_KEY:-} ]]; then
	AUTH=(-H "authorization: Bearer $ADMIN_API_KEY")
fi

WORK="$(mktemp -d)"
BODY="$WORK/body"
CREATED_IDS=()
IMPORT_PREFIX=""

have_python() { command -v python3 >/dev/null 2>&1; }

# Prints a body: pretty JSON when it parses, else the text; at most SHOW_LINES lines.
show() {
	local file=$1 lines
	[[ $SHOW_LINES -gt 0 && -s $file ]] || return 0
	if have_python && python3 -m json.tool "$file" >"$WORK/pretty" 2>/dev/null; then
		file="$WORK/pretty"
	fi
	lines=$(wc -l <"$file")
	head -n "$SHOW_LINES" "$file"
	if [[ $lines -gt $SHOW_LINES ]]; then
		echo "    … ($((lines - SHOW_LINES)) more lines)"
	fi
}

# call EXPECTED_STATUS METHOD PATH [JSON_BODY]
# Runs one request, fails loudly unless the status is EXPECTED_STATUS; the answer's body
# is left in $BODY for the next steps.
call() {
	local expected=$1 method=$2 path=$3 status
	local args=(-sS -o "$BODY" -w '%{http_code}' -X "$method" ${AUTH[@]+"${AUTH[@]}"})
	if [[ $# -ge 4 ]]; then
		args+=(-H 'content-type: application/json' --data-binary "$4")
	fi
	printf '\n==> %s %s\n' "$method" "$path"
	if ! status=$(curl "${args[@]}" "$BASE_URL$path"); then
		echo "FAILED: curl could not reach $BASE_URL$path" >&2
		exit 1
	fi
	if [[ $status != "$expected" ]]; then
		echo "FAILED: $method $path answered $status, expected $expected:" >&2
		cat "$BODY" >&2
		echo >&2
		exit 1
	fi
	echo "<== $status"
	show "$BODY"
}

# field NAME: a top-level string or number of the last JSON answer.
field() {
	if have_python; then
		python3 -c 'import json, sys; v = json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$BODY" "$1"
	else
		grep -o "\"$1\":\"\\?[^\",}]*" "$BODY" | head -n 1 | sed 's/.*:"\{0,1\}//'
	fi
}

# shellcheck disable=SC2329 # called by the EXIT trap
cleanup() {
	local id status
	for id in ${CREATED_IDS[@]+"${CREATED_IDS[@]}"}; do
		curl -sS -o /dev/null -X DELETE ${AUTH[@]+"${AUTH[@]}"} "$BASE_URL/admin/tools/$id" || true
	done
	if [[ -n $IMPORT_PREFIX ]] && have_python; then
		status=$(curl -sS -o "$WORK/imported" -w '%{http_code}' ${AUTH[@]+"${AUTH[@]}"} \
			"$BASE_URL/admin/tools?category=$IMPORT_PREFIX&include_inactive=true&limit=500" || true)
		if [[ $status == 200 ]]; then
			python3 -c 'import json, sys; [print(t["id"]) for t in json.load(open(sys.argv[1]))["tools"]]' "$WORK/imported" |
				while read -r id; do
					curl -sS -o /dev/null -X DELETE ${AUTH[@]+"${AUTH[@]}"} "$BASE_URL/admin/tools/$id" || true
				done
		fi
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

forget() { # forget ID: deleted by the script itself, nothing left to clean up
	local id kept=()
	for id in "${CREATED_IDS[@]}"; do
		[[ $id == "$1" ]] || kept+=("$id")
	done
	CREATED_IDS=(${kept[@]+"${kept[@]}"})
}

echo "tool-registry API examples against $BASE_URL (suffix $SUFFIX)"

# --- health -------------------------------------------------------------------------
call 200 GET /health
call 200 GET /health/live
call 200 GET /health/ready

# --- the API description ------------------------------------------------------------------
SHOW_LINES=0 call 200 GET /openapi.json
if have_python; then
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print("OpenAPI", d.get("openapi"), "-", len(d.get("paths", {})), "paths:", ", ".join(sorted(d.get("paths", {}))))' "$BODY"
fi
SHOW_LINES=0 call 200 GET /docs/ # (/docs redirects here)
grep -o '<title>[^<]*</title>' "$BODY" || true
# --- admin: register --------------------------------------------------------------------
call 201 POST /admin/tools '{
  "name": "'"$CALC"'",
  "description": "Evaluate an arithmetic expression such as (2+3)*4^2 (the built-in calculator)",
  "category": "'"$CATEGORY"'",
  "tags": ["math", "examples"],
  "input_schema": {"type": "object",
                   "properties": {"expression": {"type": "string", "description": "e.g. 6*7"}},
                   "required": ["expression"], "additionalProperties": false},
  "implementation": {"kind": "builtin", "handler": "calculator"}
}'
CALC_ID=$(field id)
CREATED_IDS+=("$CALC_ID")

WEATHER_DEF='{
  "name": "'"$WEATHER"'",
  "description": "Current weather for a city",
  "category": "'"$CATEGORY"'",
  "tags": ["weather", "forecast", "examples"],
  "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
  "implementation": {"kind": "http", "url": "https://weather.example/now", "timeout_ms": 5000},
  "metadata": {"owner": "examples"}
}'
call 201 POST /admin/tools "$WEATHER_DEF"
WEATHER_ID=$(field id)
CREATED_IDS+=("$WEATHER_ID")

# the same name again: 409 duplicate_tool
call 409 POST /admin/tools "$WEATHER_DEF"
# unknown fields are refused: 422 naming the field
call 422 POST /admin/tools '{"name": "examples.typo_'"$SUFFIX"'", "description": "x", "implementation": {"kind": "builtin", "handler": "calculator"}, "tagz": []}'

# several at once, all of them or none: a taken name refuses the whole batch (409 naming
# tools[i].name), an invalid item too (422 naming tools[i] and its field)
call 201 POST /admin/tools/batch '{"tools": [
  {"name": "examples.upper_'"$SUFFIX"'", "description": "Convert text to upper case",
   "category": "'"$CATEGORY"'", "implementation": {"kind": "builtin", "handler": "string_uppercase"}},
  {"name": "examples.lower_'"$SUFFIX"'", "description": "Convert text to lower case",
   "category": "'"$CATEGORY"'", "implementation": {"kind": "builtin", "handler": "string_lowercase"}}
]}'
for id in $(grep -o '"id":"[0-9a-f-]\{36\}"' "$BODY" | cut -d'"' -f4); do
	CREATED_IDS+=("$id")
done
call 409 POST /admin/tools/batch '{"tools": ['"$WEATHER_DEF"']}'

# --- admin: read, update, activate/deactivate, re-embed ----------------------------------
call 200 GET "/admin/tools?category=$CATEGORY&include_inactive=true&limit=10"
call 200 GET "/admin/tools/$WEATHER_ID"
call 200 PUT "/admin/tools/$WEATHER_ID" '{"description": "Current weather and the forecast for the next hours in a city", "version": "1.1.0"}'
call 200 POST "/admin/tools/$WEATHER_ID/deactivate"
call 404 POST /mcp/call_tool '{"name": "'"$WEATHER"'", "arguments": {"city": "Lisbon"}}'
call 200 POST "/admin/tools/$WEATHER_ID/activate"
call 200 POST "/admin/tools/$WEATHER_ID/reindex"

# --- admin: versions, rollback, upsert ---------------------------------------------------
# the update above kept version 1.0.0 in the history; a lower version is refused
call 200 GET "/admin/tools/$WEATHER_ID/versions"
call 422 PUT "/admin/tools/$WEATHER_ID" '{"description": "Older", "version": "0.9.0"}'
call 200 POST "/admin/tools/$WEATHER_ID/rollback" '{"version": "1.0.0"}'
call 404 POST "/admin/tools/$WEATHER_ID/rollback" '{"version": "9.9.9"}'
# registering the same name with "upsert": true updates it instead of 409
call 200 POST /admin/tools "${WEATHER_DEF%\}*}, \"upsert\": true}"

# --- tool use: list, find, call ---------------------------------------------------------
call 200 POST /mcp/list_tools '{"category": "'"$CATEGORY"'", "limit": 10}'
call 200 POST /mcp/find_tool '{"query": "what will the weather be like in Lisbon tomorrow", "limit": 3, "category": "'"$CATEGORY"'"}'
call 200 POST /mcp/find_tool '{"query": "multiply two numbers", "limit": 3, "mode": "text"}'
call 200 POST /mcp/call_tool '{"name": "'"$CALC"'", "arguments": {"expression": "(2+3)*4^2"}}'
[[ $(field status) == success ]] || {
	echo "FAILED: the calculator did not succeed" >&2
	exit 1
}
# a tool that fails while running is not an HTTP error: 200 with status "error"
call 200 POST /mcp/call_tool '{"name": "'"$CALC"'", "arguments": {"expression": "1/0"}}'
# arguments that do not match the input schema: 422 naming the argument
call 422 POST /mcp/call_tool '{"name": "'"$CALC"'", "arguments": {"expr": "1+1"}}'
call 404 POST /mcp/call_tool '{"name": "examples.no_such_tool_'"$SUFFIX"'", "arguments": {}}'

# --- admin: similar tools, statistics, executions, re-index -------------------------------
call 200 GET "/admin/tools/$CALC_ID/similar?limit=3"
# execution records are written in the background: wait until both calls are counted
for _ in $(seq 1 50); do
	curl -sS -o "$BODY" ${AUTH[@]+"${AUTH[@]}"} "$BASE_URL/admin/tools/$CALC_ID/stats"
	[[ $(field calls) -ge 2 ]] 2>/dev/null && break
	sleep 0.1
done
call 200 GET "/admin/tools/$CALC_ID/stats"
call 200 GET "/admin/executions?tool=$CALC&limit=5"
call 200 GET "/admin/executions?tool=$CALC&status=error&limit=5"
call 202 POST /admin/reindex

# --- upstream MCP import (only with IMPORT_URL) -----------------------------------------
if [[ -n ${IMPORT_URL:-} ]]; then
	IMPORT_PREFIX="examples_import_$SUFFIX"
	call 200 POST /admin/import '{"url": "'"$IMPORT_URL"'", "prefix": "'"$IMPORT_PREFIX"'"}'
else
	printf '\n(POST /admin/import skipped: set IMPORT_URL to an upstream MCP endpoint to run it)\n'
fi

# --- MCP JSON-RPC over Streamable HTTP ------------------------------------------------------
# initialize (protocol 2025-11-25) opens a session; the answer is an SSE stream whose
# `data:` line holds the JSON-RPC response, and the Mcp-Session-Id header names the session.
MCP_HEADERS=(-H 'accept: application/json, text/event-stream' -H 'content-type: application/json')

# mcp EXPECTED_STATUS JSON_BODY [curl args...]: one POST /mcp; prints the data lines.
mcp() {
	local expected=$1 body=$2 status
	shift 2
	printf '\n==> POST /mcp (%s)\n' "$(printf '%s' "$body" | sed -n 's/.*"method": *"\([^"]*\)".*/\1/p' | head -n 1)"
	status=$(curl -sS -D "$WORK/headers" -o "$BODY" -w '%{http_code}' ${AUTH[@]+"${AUTH[@]}"} \
		"${MCP_HEADERS[@]}" "$@" --data-binary "$body" "$BASE_URL/mcp") || {
		echo "FAILED: curl could not reach $BASE_URL/mcp" >&2
		exit 1
	}
	if [[ $status != "$expected" ]]; then
		echo "FAILED: POST /mcp answered $status, expected $expected:" >&2
		cat "$BODY" >&2
		echo >&2
		exit 1
	fi
	echo "<== $status $(grep -i '^content-type:' "$WORK/headers" | tr -d '\r' | cut -d' ' -f2-)"
	# keep the JSON of the data lines, drop the stream's priming event
	sed -n 's/^data: *//p' "$BODY" | grep -v '^$' >"$WORK/data" || true
	if [[ -s $WORK/data ]]; then
		cp "$WORK/data" "$BODY"
		show "$BODY"
	fi
}

mcp 200 '{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
  "protocolVersion": "2025-11-25", "capabilities": {},
  "clientInfo": {"name": "mcp_api_examples.sh", "version": "1.0.0"}}}'
SESSION=$(grep -i '^mcp-session-id:' "$WORK/headers" | tr -d '\r' | cut -d' ' -f2)
if [[ -z $SESSION ]]; then
	echo "FAILED: initialize answered without an Mcp-Session-Id header" >&2
	exit 1
fi
echo "session: $SESSION"
SESSION_HEADERS=(-H "mcp-session-id: $SESSION" -H 'mcp-protocol-version: 2025-11-25')
mcp 202 '{"jsonrpc": "2.0", "method": "notifications/initialized"}' "${SESSION_HEADERS[@]}"
mcp 200 '{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}' "${SESSION_HEADERS[@]}"
if have_python; then
	python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["result"]; print("tools/list:", ", ".join(t["name"] for t in r["tools"]))' "$BODY"
fi
mcp 200 '{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "call_tool",
  "arguments": {"name": "'"$CALC"'", "arguments": {"expression": "6*7"}}}}' "${SESSION_HEADERS[@]}"

# GET /mcp opens the session's server-to-client event stream; read it for a second
printf '\n==> GET /mcp (the session stream, for 1 s)\n'
status=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 1 ${AUTH[@]+"${AUTH[@]}"} \
	-H 'accept: text/event-stream' "${SESSION_HEADERS[@]}" "$BASE_URL/mcp" || true)
if [[ $status != 200 ]]; then
	echo "FAILED: GET /mcp answered $status, expected 200" >&2
	exit 1
fi
echo "<== $status (stream open)"

printf '\n==> DELETE /mcp (end the session)\n'
status=$(curl -sS -o "$BODY" -w '%{http_code}' -X DELETE ${AUTH[@]+"${AUTH[@]}"} \
	"${SESSION_HEADERS[@]}" "$BASE_URL/mcp")
if [[ $status != 2?? ]]; then
	echo "FAILED: DELETE /mcp answered $status, expected 2xx:" >&2
	cat "$BODY" >&2
	exit 1
fi
echo "<== $status"

# --- metrics ----------------------------------------------------------------------------
SHOW_LINES=0 call 200 GET /metrics
grep -E '^(find_tool_requests_total|tool_executions_total\{[^}]*'"$CALC"')' "$BODY" || true

# --- clean up: delete what was registered ---------------------------------------------------
call 204 DELETE "/admin/tools/$WEATHER_ID"
forget "$WEATHER_ID"
call 204 DELETE "/admin/tools/$CALC_ID"
forget "$CALC_ID"
call 404 GET "/admin/tools/$CALC_ID"

printf '\nmcp_api_examples: every call answered as expected\n'
