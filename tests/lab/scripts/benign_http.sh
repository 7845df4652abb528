src=$1; base=$2; n=$3; think=$4; limit=$5; shift 5
end=$(( $(date +%s) + limit ))
ua='Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
i=0
while [ "$i" -lt "$n" ] && [ "$(date +%s)" -lt "$end" ]; do
  for t in $think; do
    [ "$i" -ge "$n" ] && break
    [ "$(date +%s)" -ge "$end" ] && break
    eval "p=\${$(( i % $# + 1 ))}"
    # A page and, every other view, its assets on the same connection;
    # the first view also asks for the site's icon, which it lacks (404).
    if [ "$i" -eq 0 ]; then
      curl -s -o /dev/null -o /dev/null -o /dev/null -o /dev/null -m 3 --interface "$src" -A "$ua" \
        "$base$p" "$base/static/app.css" "$base/static/app.js" "$base/favicon.ico" || true
    elif [ $((i % 2)) -eq 0 ]; then
      curl -s -o /dev/null -o /dev/null -o /dev/null -m 3 --interface "$src" -A "$ua" \
        "$base$p" "$base/static/app.css" "$base/static/app.js" || true
    else
      curl -s -o /dev/null -m 3 --interface "$src" -A "$ua" "$base$p" || true
    fi
    i=$((i+1))
    sleep "$t"
  done
done
echo "$i"
