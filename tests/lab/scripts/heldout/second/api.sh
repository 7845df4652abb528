# An API client on HTTPie: one request per call (a new connection each),
# JSON bodies from the plan, pauses between. args: base "gaps" json ...
base=$1; gaps=$2; shift 2
i=0
for body in "$@"; do
  i=$((i+1))
  if [ $((i % 4)) = 0 ]; then
    http --ignore-stdin --timeout 4 -b GET "$base/api/notes" "page==$i" > /dev/null || true
  else
    printf '%s' "$body" | http --timeout 4 -b POST "$base/api/notes" \
      Content-Type:application/json > /dev/null || true
  fi
  t=$(echo "$gaps" | cut -d' ' -f"$i")
  sleep "${t:-1}"
done
echo "$i"
