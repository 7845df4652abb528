# A Nagios-style monitor (Debian's monitoring-plugins): every round checks
# the web server (a page and its status code), sshd (its banner) and the
# NTP server (the clock's offset), then waits. args: family(4|6) dst http_port ssh_port "gaps" page
fam=$1; dst=$2; hp=$3; sp=$4; gaps=$5; page=$6
P=/usr/lib/nagios/plugins
i=0; ok=0
for g in $gaps; do
  "$P/check_http" "-$fam" -H "$dst" -p "$hp" -u "$page" -e 200 -t 3 > /dev/null && ok=$((ok+1))
  "$P/check_ssh" "-$fam" -H "$dst" -p "$sp" -t 3 > /dev/null && ok=$((ok+1))
  "$P/check_ntp_time" "-$fam" -H "$dst" -t 3 > /dev/null && ok=$((ok+1))
  i=$((i+1))
  sleep "$g"
done
echo "$i rounds, $ok checks ok"
