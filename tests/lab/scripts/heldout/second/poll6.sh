# A status poller over IPv6 with the Nagios HTTP check: GET the path
# every `gap` seconds, `n` times. args: dst port path n gap
dst=$1; port=$2; path=$3; n=$4; gap=$5
i=0; ok=0
while [ "$i" -lt "$n" ]; do
  /usr/lib/nagios/plugins/check_http -6 -H "$dst" -p "$port" -u "$path" -t 2 > /dev/null && ok=$((ok+1))
  i=$((i+1))
  sleep "$gap"
done
echo "$i polls, $ok ok"
