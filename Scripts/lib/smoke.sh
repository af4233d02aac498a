# Shared by the smoke scripts: start real demo binaries, make requests, count checks.
# Source it from a script that has `set -euo pipefail` and has cd'd to the repository.

command -v curl >/dev/null || { echo "smoke: curl is missing (apt-get install curl)" >&2; exit 1; }
smoke_bin="$(swift build --show-bin-path)/sessionkit-demo"
[ -x "$smoke_bin" ] || swift build --product sessionkit-demo
smoke_work="$(mktemp -d)"
smoke_pids=()
smoke_passed=0
smoke_failed=0

smoke_cleanup() {
    for pid in "${smoke_pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    rm -rf "$smoke_work"
}
trap smoke_cleanup EXIT

# start_demo NAME DEMO-ARGS...: starts a demo on a free port; its base URL goes to $NAME.
start_demo() {
    local smoke_name=$1 smoke_out="$smoke_work/$1.out" smoke_url=""
    shift
    "$smoke_bin" --port 0 --demo-password smoke-secret "$@" >"$smoke_out" 2>&1 &
    smoke_pids+=($!)
    for _ in $(seq 1 300); do
        smoke_url="$(grep -o 'http://127.0.0.1:[0-9]*' "$smoke_out" | head -1 || true)"
        [ -n "$smoke_url" ] && break
        kill -0 "${smoke_pids[-1]}" 2>/dev/null || { cat "$smoke_out" >&2; echo "smoke: the demo exited" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$smoke_url" ] || { cat "$smoke_out" >&2; echo "smoke: the demo did not start" >&2; exit 1; }
    grep -q '^alice password: smoke-secret$' "$smoke_out" || { echo "smoke: passwords not printed" >&2; exit 1; }
    printf -v "$smoke_name" '%s' "$smoke_url"
}

# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then
        smoke_passed=$((smoke_passed + 1))
    else
        smoke_failed=$((smoke_failed + 1))
        echo "FAIL $1: expected [$2], got [$3]" >&2
    fi
}

# status JAR CURL-ARGS...: the response status; the body goes to $smoke_work/body.
status() {
    local jar=$1
    shift
    curl -s -o "$smoke_work/body" -w '%{http_code}' -b "$jar" -c "$jar" "$@"
}

# body_has TEXT: TEXT when the last body contains it.
body_has() { grep -o "$1" "$smoke_work/body" | head -1 || true; }

json=(-H 'content-type: application/json')

smoke_summary() {
    echo "$1: $smoke_passed passed, $smoke_failed failed"
    [ "$smoke_failed" -eq 0 ]
}
