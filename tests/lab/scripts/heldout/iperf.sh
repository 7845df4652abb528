# iperf3 throughput tests, each direction and family in turn (one server
# runs one test at a time). args: port secs rate4 rate6 v4-server v6-server
port=$1; t=$2; r4=$3; r6=$4; s4=$5; s6=$6
for run in "$s4 $r4" "$s4 $r4 -R" "$s6 $r6" "$s6 $r6 -R"; do
  set -- $run
  srv=$1; rate=$2; shift 2
  iperf3 -c "$srv" -p "$port" -t "$t" -b "$rate" --connect-timeout 3000 "$@" > /dev/null || exit 1
  sleep 1
done
echo 4
