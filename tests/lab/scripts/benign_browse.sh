src=$1; base=$2; n=$3; think=$4; limit=$5; variant=$6
end=$(( $(date +%s) + limit ))
case $((variant % 3)) in
  0) ua='Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' ;;
  1) ua='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36' ;;
  *) ua='Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148' ;;
esac
# One link went stale: the server answers it 404, as real sites do.
pages="/ /index.html /about.html /blog/ /news/2024/05/article-17.html /products?page=3 /docs/getting-started.html /news/2023/11/old-article.html /search?q=opening+hours"
sizes="3072 8192 17408 40960 6144 90112 12288"
c() { curl -s -m 3 --interface "$src" -A "$ua" "$@" || true; }
pick() { eval "echo \${$(( $1 % $2 + 3 ))}"; }
i=0
while [ "$i" -lt "$n" ] && [ "$(date +%s)" -lt "$end" ]; do
  for t in $think; do
    [ "$i" -ge "$n" ] && break
    [ "$(date +%s)" -ge "$end" ] && break
    k=$((i + variant))
    p=$(pick $k 9 $pages)
    sz=$(pick $k 7 $sizes)
    case $((k % 6)) in
      # A page with its assets; a browser also asks for the site's icon,
      # which this site does not have (404), on the same connection.
      0) c -o /dev/null -o /dev/null -o /dev/null -o /dev/null "$base$p" "$base/static/site.css" "$base/static/site.js" "$base/favicon.ico" ;;
      1) c -Z --parallel-max 3 -o /dev/null -o /dev/null -o /dev/null "$base$p" "$base/files/$sz" "$base/static/logo.svg" ;;
      2) c -o /dev/null -d "name=Alex%20Doe&email=alex$k%40example.org&message=$(head -c $((40 + k * 37 % 400)) /dev/zero | tr '\0' 'a')" "$base/contact" ;;
      3) c -o /dev/null "$base/files/$sz" ;;
      4) c -o /dev/null -I "$base$p" ;;
      *) c -o /dev/null "$base$p" ;;
    esac
    i=$((i+1))
    sleep "$t"
  done
done
echo "$i"
