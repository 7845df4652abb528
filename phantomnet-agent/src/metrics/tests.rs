use std::sync::Arc;
use std::time::Duration;

use phantomnet_common::Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// The value of the sample line `series` (name plus labels, exactly as
/// rendered), or `None` when absent.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().unwrap())
    })
}

#[test]
fn render_has_every_metric_with_labels_and_values() {
    let m = Metrics::new();
    m.set_xdp_totals("eth0", Outcome::BlockDropped, 42, 4200);
    m.set_xdp_totals("eth1", Outcome::Passed, 7, 700);
    m.samples_read(5);
    m.samples_read(3);
    m.samples_lost(2);
    m.decision(Action::Block);
    m.decision(Action::Block);
    m.decision(Action::Deceive);
    m.set_active_rules(RuleKind::Throttle, 9);
    m.inference(Duration::from_micros(3));
    m.inference(Duration::from_micros(700));
    m.set_flow_table_sources(1234);
    m.set_deceive_queue(17);
    m.refusals(5);
    m.journal_suppressed(false, 40);
    m.journal_suppressed(true, 2);
    m.map_full(phantomnet_common::maps::BLOCK_V4);
    let text = m.render();

    let expect = [
        (
            "phantomnet_xdp_packets_total{outcome=\"block_dropped\",interface=\"eth0\"}",
            42.0,
        ),
        (
            "phantomnet_xdp_bytes_total{outcome=\"block_dropped\",interface=\"eth0\"}",
            4200.0,
        ),
        (
            "phantomnet_xdp_packets_total{outcome=\"passed\",interface=\"eth1\"}",
            7.0,
        ),
        (
            "phantomnet_xdp_bytes_total{outcome=\"passed\",interface=\"eth1\"}",
            700.0,
        ),
        ("phantomnet_samples_read_total", 8.0),
        ("phantomnet_samples_lost_total", 2.0),
        ("phantomnet_decisions_total{action=\"BLOCK\"}", 2.0),
        ("phantomnet_decisions_total{action=\"DECEIVE\"}", 1.0),
        ("phantomnet_decisions_total{action=\"LOG\"}", 0.0),
        ("phantomnet_decisions_total{action=\"THROTTLE\"}", 0.0),
        ("phantomnet_active_rules{action=\"THROTTLE\"}", 9.0),
        ("phantomnet_active_rules{action=\"BLOCK\"}", 0.0),
        ("phantomnet_inference_seconds_count", 2.0),
        ("phantomnet_inference_seconds_bucket{le=\"1e-6\"}", 0.0),
        ("phantomnet_inference_seconds_bucket{le=\"5e-6\"}", 1.0),
        ("phantomnet_inference_seconds_bucket{le=\"0.0005\"}", 1.0),
        ("phantomnet_inference_seconds_bucket{le=\"0.001\"}", 2.0),
        ("phantomnet_inference_seconds_bucket{le=\"0.01\"}", 2.0),
        ("phantomnet_inference_seconds_bucket{le=\"+Inf\"}", 2.0),
        ("phantomnet_flow_table_sources", 1234.0),
        ("phantomnet_deceive_queue", 17.0),
        ("phantomnet_refusals_total", 5.0),
        (
            "phantomnet_journal_suppressed_total{record=\"routine\"}",
            40.0,
        ),
        (
            "phantomnet_journal_suppressed_total{record=\"enforcement\"}",
            2.0,
        ),
        ("phantomnet_map_full_total{map=\"PN_BLOCK_V4\"}", 1.0),
        ("phantomnet_map_full_total{map=\"PN_THR_RULE_V6\"}", 0.0),
    ];
    for (series, value) in expect {
        // Float bucket labels may be rendered as 1e-6 or 0.000001; accept
        // either spelling of the bound.
        let got = sample(&text, series).or_else(|| {
            let alt = series
                .replace("le=\"1e-6\"", "le=\"0.000001\"")
                .replace("le=\"5e-6\"", "le=\"0.000005\"");
            sample(&text, &alt)
        });
        assert_eq!(got, Some(value), "{series} in:\n{text}");
    }
    let sum = sample(&text, "phantomnet_inference_seconds_sum").unwrap();
    assert!((sum - 703e-6).abs() < 1e-9, "{sum}");
    for ty in [
        "# TYPE phantomnet_xdp_packets counter",
        "# TYPE phantomnet_xdp_bytes counter",
        "# TYPE phantomnet_samples_read counter",
        "# TYPE phantomnet_samples_lost counter",
        "# TYPE phantomnet_decisions counter",
        "# TYPE phantomnet_active_rules gauge",
        "# TYPE phantomnet_inference_seconds histogram",
        "# TYPE phantomnet_flow_table_sources gauge",
    ] {
        assert!(text.contains(ty), "{ty} missing in:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn xdp_totals_are_absolute_and_interfaces_can_be_removed() {
    let m = Metrics::new();
    let series = "phantomnet_xdp_packets_total{outcome=\"sampled\",interface=\"eth0\"}";
    m.set_xdp_totals("eth0", Outcome::Sampled, 100, 1);
    m.set_xdp_totals("eth0", Outcome::Sampled, 150, 2);
    assert_eq!(sample(&m.render(), series), Some(150.0));
    m.set_samples_lost_total(77);
    assert_eq!(
        sample(&m.render(), "phantomnet_samples_lost_total"),
        Some(77.0)
    );
    m.remove_interface("eth0");
    assert_eq!(sample(&m.render(), series), None);
}

#[test]
fn signature_dropped_is_an_xdp_outcome_series() {
    let m = Metrics::new();
    m.set_xdp_totals("eth0", Outcome::SignatureDropped, 12, 720);
    let text = m.render();
    let series = "{outcome=\"signature_dropped\",interface=\"eth0\"}";
    assert_eq!(
        sample(&text, &format!("phantomnet_xdp_packets_total{series}")),
        Some(12.0)
    );
    assert_eq!(
        sample(&text, &format!("phantomnet_xdp_bytes_total{series}")),
        Some(720.0)
    );
}

fn sig(id: u32, rule: &str, matched: u64, dropped: u64, exempted: u64) -> SignatureCounts {
    SignatureCounts {
        id,
        rule: rule.to_string(),
        matched,
        dropped,
        exempted,
    }
}

#[test]
fn signature_series_follow_the_rules_installed_and_stay_bounded() {
    let m = Metrics::new();
    assert_eq!(sample(&m.render(), "phantomnet_signature_rules"), Some(0.0));
    let syn = "tcp dst 203.0.113.10/32 dport 80 flags SYN/SYN+ACK";
    let dns = "udp dst 203.0.113.0/24 dport 53 len 554";
    m.set_signatures(2, &[sig(1, syn, 10, 9, 1), sig(2, dns, 5, 0, 0)]);
    m.set_signatures(2, &[sig(1, syn, 30, 27, 3), sig(2, dns, 5, 0, 0)]);
    let text = m.render();
    let labels = |id, rule| format!("{{id=\"{id}\",rule=\"{rule}\"}}");
    for (name, v) in [
        ("phantomnet_signature_matched_total", 30.0),
        ("phantomnet_signature_dropped_total", 27.0),
        ("phantomnet_signature_exempted_total", 3.0),
    ] {
        assert_eq!(
            sample(&text, &format!("{name}{}", labels(1, syn))),
            Some(v),
            "{name}"
        );
    }
    assert_eq!(
        sample(
            &text,
            &format!("phantomnet_signature_matched_total{}", labels(2, dns))
        ),
        Some(5.0)
    );
    assert_eq!(sample(&text, "phantomnet_signature_rules"), Some(2.0));
    for ty in [
        "# TYPE phantomnet_signature_rules gauge",
        "# TYPE phantomnet_signature_matched counter",
        "# TYPE phantomnet_signature_dropped counter",
        "# TYPE phantomnet_signature_exempted counter",
    ] {
        assert!(text.contains(ty), "{ty} missing in:\n{text}");
    }

    // Rule 1 removed: its series go, rule 2's stay.
    m.set_signatures(1, &[sig(2, dns, 6, 0, 0)]);
    let text = m.render();
    assert_eq!(
        sample(
            &text,
            &format!("phantomnet_signature_dropped_total{}", labels(1, syn))
        ),
        None
    );
    assert_eq!(
        sample(
            &text,
            &format!("phantomnet_signature_matched_total{}", labels(2, dns))
        ),
        Some(6.0)
    );

    // Never more series than the data plane has slots.
    let many: Vec<_> = (1..=100)
        .map(|i| sig(i, &format!("any dst 10.0.0.{i}/32"), 1, 1, 0))
        .collect();
    m.set_signatures(100, &many);
    let n = m
        .render()
        .lines()
        .filter(|l| l.starts_with("phantomnet_signature_dropped_total{"))
        .count();
    assert_eq!(n, SIGNATURE_SERIES);
}

#[test]
fn inference_buckets_span_1us_to_10ms() {
    assert_eq!(INFERENCE_BUCKETS.first(), Some(&1e-6));
    assert_eq!(INFERENCE_BUCKETS.last(), Some(&1e-2));
    assert!(INFERENCE_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    let text = Metrics::new().render();
    let buckets = text
        .lines()
        .filter(|l| l.starts_with("phantomnet_inference_seconds_bucket"))
        .count();
    assert_eq!(buckets, INFERENCE_BUCKETS.len() + 1, "{text}");
}

/// Sends one raw HTTP/1.1 request and returns (status line, headers
/// lowercased, body).
async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("response within 5 s")
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_string(),
        headers.to_ascii_lowercase(),
        body.to_string(),
    )
}

#[tokio::test]
async fn http_endpoint_serves_metrics_404s_and_shuts_down() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::new());
    metrics.decision(Action::Throttle);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Arc::clone(&metrics), async {
        let _ = rx.await;
    }));

    let (status, headers, body) = http(addr, "GET", "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains(&format!("content-type: {OPENMETRICS_CONTENT_TYPE}")),
        "{headers}"
    );
    assert_eq!(
        sample(&body, "phantomnet_decisions_total{action=\"THROTTLE\"}"),
        Some(1.0)
    );
    assert!(body.ends_with("# EOF\n"));

    // Later updates show up in the next scrape.
    metrics.decision(Action::Throttle);
    let (_, _, body) = http(addr, "GET", "/metrics").await;
    assert_eq!(
        sample(&body, "phantomnet_decisions_total{action=\"THROTTLE\"}"),
        Some(2.0)
    );

    let (status, _, _) = http(addr, "GET", "/").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _, _) = http(addr, "GET", "/metrics/extra").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, headers, _) = http(addr, "POST", "/metrics").await;
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert!(headers.contains("allow: get, head"), "{headers}");
    let (status, _, body) = http(addr, "HEAD", "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.is_empty());

    tx.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap();
    assert!(result.is_ok());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn shutdown_finishes_with_an_idle_connection_open() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Arc::new(Metrics::new()), async {
        let _ = rx.await;
    }));
    // A keep-alive client that sent one request and stays connected.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 15];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200 OK");

    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("graceful shutdown closes idle keep-alive connections")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let e = bind(addr).await.unwrap_err();
    assert!(matches!(e, MetricsError::Bind { .. }));
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
}
