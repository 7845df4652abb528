# A resolver's queries with Knot's kdig, one per name:type, with gaps.
# args: dns "gaps" name:type ...
dns=$1; gaps=$2; shift 2
i=0
for q in "$@"; do
  kdig +retry=0 +time=2 +short @"$dns" "${q%%:*}" "${q#*:}" > /dev/null || true
  i=$((i+1))
  t=$(echo "$gaps" | cut -d' ' -f"$i")
  sleep "${t:-0.5}"
done
echo "$i"
