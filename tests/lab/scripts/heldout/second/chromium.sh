# A real browser: headless Chromium loads each page with everything it
# references (CSS, scripts, images, and its own /favicon.ico), then the
# user thinks. A fresh profile per session, removed at the end.
# args: profile "think times" url ...
prof=$1; think=$2; shift 2
mkdir -p "$prof"
i=0
for url in "$@"; do
  timeout 20 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --user-data-dir="$prof" --virtual-time-budget=3000 \
    --dump-dom "$url" > /dev/null 2>&1 || true
  i=$((i+1))
  t=$(echo "$think" | cut -d' ' -f"$i")
  sleep "${t:-1}"
done
rm -rf "$prof"
echo "$i"
