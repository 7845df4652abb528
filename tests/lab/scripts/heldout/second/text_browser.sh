# A text-mode browser (lynx or w3m) reading pages and following the
# user's pauses. args: tool "think times" url ...
tool=$1; think=$2; shift 2
i=0
for url in "$@"; do
  if [ "$tool" = lynx ]; then
    lynx -dump -connect_timeout=4 -read_timeout=4 "$url" > /dev/null 2>&1 || true
  else
    timeout 8 w3m -dump "$url" > /dev/null 2>&1 || true
  fi
  i=$((i+1))
  t=$(echo "$think" | cut -d' ' -f"$i")
  sleep "${t:-1}"
done
echo "$i"
