# Several clients behind one NAT address (run in the NAT's inside
# namespace): a browser, a resolver, a downloader and a health checker, at
# once, each from its own inside address. args: family server dns rounds
fam=$1; srv=$2; dns=$3; n=$4
if [ "$fam" = 6 ]; then p=fd77::; base="http://[$srv]"; else p=10.77.0.; base="http://$srv"; fi
ua='Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15'
(i=0; while [ $i -lt "$n" ]; do
   curl -s -m 4 --interface "${p}11" -A "$ua" -o /dev/null -o /dev/null -o /dev/null \
     "$base/news/article-$((i % 3 + 1)).html" "$base/static/site.css" "$base/img/photo-$((i % 8 + 1)).jpg" || true
   i=$((i+1)); sleep 1.3; done) &
(i=0; while [ $i -lt "$n" ]; do
   dig +tries=1 +time=2 +short -b "${p}12" @"$dns" "www.lab.example" A > /dev/null || true
   dig +tries=1 +time=2 +short -b "${p}12" @"$dns" "cdn.lab.example" AAAA > /dev/null || true
   i=$((i+1)); sleep 0.9; done) &
(i=0; while [ $i -lt "$n" ]; do
   wget -q -T 3 -t 1 --bind-address="${p}13" -O /dev/null "$base/img/photo-$((i % 8 + 1)).jpg" || true
   i=$((i+1)); sleep 2.1; done) &
(i=0; while [ $i -lt $((n * 2)) ]; do
   wget -q -T 2 -t 1 --bind-address="${p}14" -O /dev/null "$base/healthz" || true
   i=$((i+1)); sleep 0.7; done) &
wait
echo "$n"
