//! The query string of a sampled HTTP request, read as the web server will
//! read it: split into values, form-decoded ('+' a space, `%XX` a byte),
//! and each value that could carry SQL judged by libinjection's tokenizer
//! and fingerprint list (the `libinjectionrs` port).
//!
//! Literal patterns miss what injection tools send. sqlmap encodes every
//! payload (`id=991%20AND%206215%3D9269`, `%27%29%20AND%20EXTRACTVALUE%28…`)
//! and varies it per request, so none of [`super::signatures::BUILTIN`]'s
//! SQL patterns occurred in 104 of its sampled requests on a held-out
//! recording; libinjection flags the decoded values as a WAF does.
//!
//! Only the request line's target is read (the sampled prefix is 64
//! bytes); a JSON or form body is left to the literal patterns, so an API
//! client posting quotes and SQL words is not judged as a query.

use phantomnet_common::SAMPLE_PAYLOAD_LEN;

/// Most libinjection calls per sample. A call costs a few microseconds
/// (docs/BENCHMARKS.md); values with none of [`SQL_BYTES`] are not judged.
/// An injection tool puts its payload in one parameter at a time.
pub const MAX_JUDGED: usize = 2;

/// Bytes that change an SQL statement's structure: quotes, parentheses,
/// a statement end, a comparison, a comment (with `--` and `/*`). A value
/// with none (a number, words, a search phrase) is not judged.
const SQL_BYTES: &[u8] = b"'\"`();#=";

/// The query of an HTTP/1 request line at the start of `prefix`: the bytes
/// after the target's `?`, up to the space before the version or the end
/// of the sampled prefix. `None` for anything else.
pub fn query(prefix: &[u8]) -> Option<&[u8]> {
    let sp = prefix.iter().position(|&b| b == b' ')?;
    let method = &prefix[..sp];
    if !(3..=7).contains(&method.len()) || !method.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    let target = &prefix[sp + 1..];
    let end = target
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))
        .unwrap_or(target.len());
    let target = &target[..end];
    let q = target.iter().position(|&b| b == b'?')?;
    Some(&target[q + 1..])
}

/// The values of a query's `name=value` pairs (a pair without `=` is its
/// own value), still encoded.
pub fn values(query: &[u8]) -> impl Iterator<Item = &[u8]> {
    query
        .split(|&b| b == b'&' || b == b';')
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => &pair[eq + 1..],
            None => pair,
        })
        .filter(|v| !v.is_empty())
}

/// Form-decodes `raw` into `out` and returns the decoded bytes: `+` is a
/// space, `%XX` the byte XX, and a `%` not followed by two hex digits
/// stays as it is (as servers read it). Never longer than `raw`.
pub fn decode<'a>(raw: &[u8], out: &'a mut [u8; SAMPLE_PAYLOAD_LEN]) -> &'a [u8] {
    let mut plus = [0u8; SAMPLE_PAYLOAD_LEN];
    let raw = &raw[..raw.len().min(SAMPLE_PAYLOAD_LEN)];
    for (o, &b) in plus.iter_mut().zip(raw) {
        *o = if b == b'+' { b' ' } else { b };
    }
    let mut n = 0;
    for (o, b) in out
        .iter_mut()
        .zip(percent_encoding::percent_decode(&plus[..raw.len()]))
    {
        *o = b;
        n += 1;
    }
    &out[..n]
}

/// Whether a decoded value could carry SQL: it holds one of [`SQL_BYTES`]
/// or a comment opener.
pub fn could_be_sql(value: &[u8]) -> bool {
    value.iter().any(|b| SQL_BYTES.contains(b))
        || value.windows(2).any(|w| w == b"--" || w == b"/*")
}

/// libinjection's verdict on one decoded value.
pub fn is_sqli(value: &[u8]) -> bool {
    libinjectionrs::detect_sqli(value).is_injection()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(raw: &[u8]) -> Vec<u8> {
        let mut out = [0u8; SAMPLE_PAYLOAD_LEN];
        decode(raw, &mut out).to_vec()
    }

    #[test]
    fn the_query_of_a_request_line_and_nothing_else() {
        assert_eq!(
            query(b"GET /docs/guide.html?id=991&ref=12 HTTP/1.1\r\nHost: x"),
            Some(&b"id=991&ref=12"[..])
        );
        // Cut off by the 64-byte prefix: what was sampled.
        assert_eq!(
            query(b"GET /a?id=991%20AND%20EXTRA"),
            Some(&b"id=991%20AND%20EXTRA"[..])
        );
        assert_eq!(query(b"POST /api/items HTTP/1.1\r\n"), None);
        assert_eq!(query(b"GET / HTTP/1.1"), None);
        assert_eq!(query(b"{\"q\":\"a?b=1\"}"), None);
        assert_eq!(query(b"get /a?b=1 HTTP/1.1"), None);
        assert_eq!(query(b"SSH-2.0-OpenSSH_9.2"), None);
        assert_eq!(query(b""), None);
        assert_eq!(query(b" "), None);
    }

    #[test]
    fn values_and_form_decoding() {
        let v: Vec<&[u8]> = values(b"id=991&ref=&flag&q=a%20b").collect();
        assert_eq!(v, [&b"991"[..], b"flag", b"a%20b"]);
        assert_eq!(decoded(b"991%20AND%201%3D1"), b"991 AND 1=1");
        assert_eq!(decoded(b"rock+and+roll%2B"), b"rock and roll+");
        assert_eq!(decoded(b"100%"), b"100%");
        assert_eq!(decoded(b"%zz%4"), b"%zz%4");
        assert_eq!(decoded(&[b'%'; 64]), [b'%'; 64]);
    }

    #[test]
    fn encoded_sqlmap_payloads_are_injections() {
        // Values sqlmap sent (a held-out recording's samples, cut at 64
        // bytes as sampled).
        for raw in [
            &b"991%20AND%206215%3D9269"[..],
            b"991%29%20AND%201010%3D6362%20AND%20%2887",
            b"991%27%20AND%204883%3D3590%20AND%20%27Zj",
            b"%28SELECT%20%28CASE%20WHEN%20%285425%3D1",
            b"991%20AND%203218%3DCAST%28%28CHR%28113%2",
            b"991%20AND%207682%3D2228--%20dfJu",
            b"1'+OR+'1'%3D'1",
        ] {
            let d = decoded(raw);
            assert!(could_be_sql(&d), "{}", String::from_utf8_lossy(&d));
            assert!(is_sqli(&d), "{}", String::from_utf8_lossy(&d));
        }
    }

    #[test]
    fn ordinary_values_are_not() {
        for raw in [
            &b"991"[..],
            b"rock+and+roll",
            b"O%27Reilly",
            b"name",
            b"2026-12-06",
            b"desc",
            b"hello%20world",
            b"a%3Db",
            b"select+a+plan",
            b"Tom+%26+Jerry+(1940)",
        ] {
            let d = decoded(raw);
            assert!(
                !(could_be_sql(&d) && is_sqli(&d)),
                "{}",
                String::from_utf8_lossy(&d)
            );
        }
        assert!(!could_be_sql(b"991"));
        assert!(!could_be_sql(b"rock and roll"));
        assert!(could_be_sql(b"1 UNION ALL SELECT NULL--"));
        assert!(could_be_sql(b"1/**/OR/**/1"));
    }

    #[test]
    fn hostile_values_never_panic() {
        // Every byte value, unbalanced quotes and comments, at every
        // length up to the sampled prefix.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"'\"`()-#/*;,.=<>!&|^~ 0123456789abcdefSELECTUNIONORAND%+";
        for i in 0..20_000 {
            let len = i % (SAMPLE_PAYLOAD_LEN + 1);
            let mut raw = [0u8; SAMPLE_PAYLOAD_LEN];
            for b in raw.iter_mut().take(len) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = if x.is_multiple_of(5) {
                    (x >> 24) as u8
                } else {
                    alphabet[(x >> 24) as usize % alphabet.len()]
                };
            }
            let d = decoded(&raw[..len]);
            assert!(d.len() <= len);
            let _ = is_sqli(&d);
            let _ = query(&raw[..len]).map(|q| values(q).count());
        }
    }
}
