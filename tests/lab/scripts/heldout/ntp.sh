# An NTP client checking the clock now and then: `chronyd -Q` (measure,
# print the offset, never set the clock) against the lab's chronyd, a few
# times with pauses. args: server pidfile "gaps"
server=$1; pid=$2; gaps=$3
i=0
for g in $gaps; do
  chronyd -Q -u root -f /dev/null "server $server iburst" "pidfile $pid" 2>&1 || exit 1
  i=$((i+1))
  sleep "$g"
done
echo "checks $i"
