# A health checker: GET /healthz every `gap` seconds, `n` times.
# args: url n gap
url=$1; n=$2; gap=$3
i=0
while [ "$i" -lt "$n" ]; do
  wget -q -T 2 -t 1 -O /dev/null -U 'kube-probe/1.30' "$url" || true
  i=$((i+1))
  sleep "$gap"
done
echo "$i"
