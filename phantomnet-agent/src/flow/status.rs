//! What an answer said: whether the protected side's answer to a source
//! is an HTTP response with an error status (schema v6's `server_errors`).
//!
//! A password guesser is told 401 at every guess, a scanner 404 and 400,
//! an injection tool 400, 403 or 500, where a health checker, a browser
//! or an API client is mostly told 200: requests at the same pace that
//! the answer can tell apart. The status line is read with `httparse`
//! (hyper's parser, already in the tree) from the answer's sampled payload
//! prefix (at most 64 bytes, so the headers are usually cut short: a
//! partial parse, after the status code).

/// Whether `payload`, the start of an answer's L4 payload, opens an
/// HTTP/1.x response whose status is 4xx or 5xx. Anything else (a later
/// segment of a response, a non-HTTP protocol, TLS, a status line cut
/// short, a malformed one) is not.
pub fn http_error(payload: &[u8]) -> bool {
    // A 64-byte prefix holds at most 16 header lines ("a:\r\n" each), so
    // 16 slots never run out before the prefix does.
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(payload) {
        Ok(_) => matches!(response.code, Some(400..=599)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::http_error;

    #[test]
    fn error_statuses_are_read_from_a_cut_short_prefix() {
        // What nginx sends, cut at 64 bytes as a sample's prefix is.
        let cut = |s: &str| s.as_bytes()[..s.len().min(64)].to_vec();
        for status in [
            "400 Bad Request",
            "401 Unauthorized",
            "404 Not Found",
            "503 x",
        ] {
            let r = format!(
                "HTTP/1.1 {status}\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 05:00:00 GMT\r\n"
            );
            assert!(http_error(&cut(&r)), "{r}");
        }
        assert!(http_error(b"HTTP/1.0 403 Forbidden\r\n\r\n"));
        for r in [
            "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 05:00:00 GMT\r\n",
            "HTTP/1.1 301 Moved Permanently\r\nServer: nginx\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n",
        ] {
            assert!(!http_error(&cut(r)), "{r}");
        }
    }

    #[test]
    fn anything_but_a_status_line_is_not_an_error() {
        for p in [
            &b""[..],
            b"HTTP/1.1 40",                // cut inside the code
            b"HTTP/1.1 4O4 Not Found\r\n", // not a number
            b"HTTP/1.1 600 Nope\r\n",      // not a status class
            b"HTTP/3 404 Not Found\r\n",   // not HTTP/1.x
            b"<html><body>HTTP/1.1 404 ",  // a later segment
            b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n",
            b"\x16\x03\x03\x00\x7a\x02\x00\x00", // a TLS ServerHello
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", // a request
        ] {
            assert!(!http_error(p), "{p:?}");
        }
    }
}
