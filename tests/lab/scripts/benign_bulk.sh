src=$1; host=$2; base=$3; bytes=$4
head -c "$bytes" /dev/urandom | nc -N -w 5 -s "$src" "$host" 9000 || true
curl -s -o /dev/null -m 10 --interface "$src" "$base/files/$bytes" || true
echo $((bytes * 2))
