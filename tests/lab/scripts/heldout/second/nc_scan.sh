# A slow connect scan with OpenBSD netcat: one `nc -z` probe per port,
# a random pause (lo..hi seconds) between probes.
# args: dst lo hi "port port ..."
dst=$1; lo=$2; hi=$3; ports=$4
i=0; open=0
for p in $ports; do
  if nc -z -w 1 "$dst" "$p" 2>/dev/null; then open=$((open+1)); fi
  i=$((i+1))
  sleep "$(awk -v a="$lo" -v b="$hi" -v s="$i$p" 'BEGIN { srand(s); printf "%.2f", a + (b - a) * rand() }')"
done
echo "probed $i ports, $open open"
