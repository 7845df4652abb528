# A browser-like client. Each view fetches a page and then its assets and
# images over several parallel keep-alive connections (`curl -Z`), or with
# `wget -p` (page requisites on one keep-alive connection), then thinks.
# args: mode(curl|wget) base tmpdir parallel "think times" page:img,img ...
mode=$1; base=$2; tmp=$3; par=$4; think=$5; shift 5
ua='Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0'
mkdir -p "$tmp"
i=0
for view in "$@"; do
  page=${view%%:*}; imgs=${view#*:}
  if [ "$mode" = wget ]; then
    wget -q -p -nd -e robots=off -T 3 -t 1 -U "$ua" --delete-after -P "$tmp" "$base$page" || true
  else
    urls="$base$page $base/static/site.css $base/static/vendor.js $base/static/app.js $base/img/logo.svg"
    for im in $(echo "$imgs" | tr ',' ' '); do urls="$urls $base/img/photo-$im.jpg"; done
    outs=""; for u in $urls; do outs="$outs -o /dev/null"; done
    # shellcheck disable=SC2086
    curl -s -m 5 -A "$ua" -Z --parallel-max "$par" $outs $urls || true
  fi
  i=$((i+1))
  t=$(echo "$think" | cut -d' ' -f"$i")
  sleep "${t:-1}"
done
echo "$i"
