# A monitoring poller: curl GETs one URL every `gap` s, a new connection
# each time, `n` times or until `limit` s. Prints the requests made.
# args: src url n gap limit
src=$1; url=$2; n=$3; gap=$4; limit=$5
end=$(( $(date +%s) + limit ))
i=0
while [ "$i" -lt "$n" ] && [ "$(date +%s)" -lt "$end" ]; do
  curl -s -o /dev/null -m 2 --interface "$src" -A 'uptime-monitor/2.1' "$url" || true
  i=$((i+1))
  sleep "$gap"
done
echo "$i"
