# Several clients behind one NAT address (run in the NAT's inside
# namespace), at once: a text browser (lynx), a resolver (kdig), a
# segmented downloader (aria2c) and a status poller (httping; over IPv6 the
# Nagios HTTP check), from the inside addresses (the tools that can bind
# one use their own). args: family server rounds tmpdir
fam=$1; srv=$2; n=$3; tmp=$4
if [ "$fam" = 6 ]; then p=fd77::; base="http://[$srv]"; else p=10.77.0.; base="http://$srv"; fi
mkdir -p "$tmp"
(i=0; while [ $i -lt "$n" ]; do
   lynx -dump -connect_timeout=4 "$base/docs/guide.html" > /dev/null 2>&1 || true
   i=$((i+1)); sleep 1.7; done) &
(i=0; while [ $i -lt "$n" ]; do
   kdig +retry=0 +time=2 +short -b "${p}12" @"$srv" "wiki.lab.example" AAAA > /dev/null || true
   kdig +retry=0 +time=2 +short -b "${p}12" @"$srv" "git.lab.example" A > /dev/null || true
   i=$((i+1)); sleep 1.1; done) &
(aria2c -q -x 2 -s 2 --interface="${p}13" --max-overall-download-limit=3M --allow-overwrite=true \
   --connect-timeout=3 --timeout=5 --max-tries=1 -d "$tmp" -o nat.bin "$base/files/large-2.bin" || true
 rm -f "$tmp/nat.bin") &
if [ "$fam" = 6 ]; then
  # httping 2.5 cannot reach an IPv6 literal: the Nagios HTTP check instead.
  (i=0; while [ $i -lt $((n * 2)) ]; do
     /usr/lib/nagios/plugins/check_http -6 -H "$srv" -u /nginx_status -t 2 > /dev/null || true
     i=$((i+1)); sleep 0.8; done) &
else
  httping -q -c $((n * 2)) -i 0.8 -t 2 -y "${p}14" -G "$base/nginx_status" > /dev/null 2>&1 &
fi
wait
rm -rf "$tmp"
echo "$n"
