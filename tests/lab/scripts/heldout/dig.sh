# A resolver client: one `dig` per query against the lab's dnsmasq.
# args: server "gaps" name:type ...
server=$1; gaps=$2; shift 2
i=0
for q in "$@"; do
  dig +tries=1 +time=2 +short @"$server" -t "${q#*:}" "${q%%:*}" > /dev/null || true
  i=$((i+1))
  g=$(echo "$gaps" | cut -d' ' -f"$i")
  sleep "${g:-0.5}"
done
echo "$i"
