src=$1; base=$2; n=$3; gap=$4; limit=$5; shift 5
end=$(( $(date +%s) + limit ))
i=0
while [ "$i" -lt "$n" ] && [ "$(date +%s)" -lt "$end" ]; do
  for p in "$@"; do
    [ "$i" -ge "$n" ] && break
    [ "$(date +%s)" -ge "$end" ] && break
    case "$p" in
      POST:*) curl -s -o /dev/null -m 2 --interface "$src" -d "${p#POST:}" "$base/login" || true ;;
      *) curl -s -o /dev/null -m 2 --interface "$src" --path-as-is "$base$p" || true ;;
    esac
    i=$((i+1))
    sleep "$gap"
  done
done
echo "$i"
