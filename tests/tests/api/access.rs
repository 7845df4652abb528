//! Who may reach the API: the Unix socket's permissions, mutual TLS on TCP.
#[allow(unused_imports)]
use super::*;

#[test]
fn the_unix_socket_is_for_root_only() {
    if !root_or_skip("the_unix_socket_is_for_root_only") {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let t = TestLab::up("apisock");
    let cfg = write_config(&t, "");
    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    let meta = fs::metadata(t.api_socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), 0);
    let ctl = phantomnet_tests::agent_bin().with_file_name("phantomctl");
    let as_nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&ctl)
        .arg("--socket")
        .arg(t.api_socket())
        .arg("status")
        .output()
        .unwrap();
    assert!(!as_nobody.status.success());
    assert!(
        String::from_utf8_lossy(&as_nobody.stderr).contains("ermission denied"),
        "{}",
        String::from_utf8_lossy(&as_nobody.stderr)
    );
    let as_root = Command::new(&ctl)
        .arg("--socket")
        .arg(t.api_socket())
        .args(["--json", "status"])
        .output()
        .unwrap();
    assert!(
        as_root.status.success(),
        "{}",
        String::from_utf8_lossy(&as_root.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&as_root.stdout).unwrap();
    assert_eq!(v["interfaces"][0]["name"], "out0");
}

#[test]
fn tcp_requires_a_client_certificate_from_the_configured_ca() {
    if !root_or_skip("tcp_requires_a_client_certificate_from_the_configured_ca") {
        return;
    }
    let t = TestLab::up("mtls");
    let pki = Pki::new("mtls");
    let tcp = format!(
        "\n[api.tcp]\nlisten = \"127.0.0.1:50443\"\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
        pki.path("server.crt").display(),
        pki.path("server.key").display(),
        pki.path("ca.crt").display()
    );
    let cfg = write_config(&t, &tcp);
    let _agent = AgentProcess::start(&t, &["--config", cfg.to_str().unwrap()]);
    let url = "https://127.0.0.1:50443";
    let ca = pki.path("ca.crt");
    // The listener is on the gateway namespace's loopback: connect from there.
    let attempt = |cert: Option<&str>| {
        let (c, k) = (
            cert.map(|s| pki.path(&format!("{s}.crt"))),
            cert.map(|s| pki.path(&format!("{s}.key"))),
        );
        in_netns(&t.netns(Role::Gw), || {
            rt().block_on(async {
                let tls = ClientTls {
                    ca: &ca,
                    cert: c.as_deref(),
                    key: k.as_deref(),
                    domain: Some("localhost"),
                };
                let mut client = connect_tls(url, &tls).await.map_err(|e| e.to_string())?;
                client
                    .status(pb::StatusRequest {})
                    .await
                    .map(|r| r.into_inner().version)
                    .map_err(|e| e.to_string())
            })
        })
    };
    let ok = attempt(Some("client")).expect("a client with a certificate from the CA is served");
    assert!(!ok.is_empty());
    assert!(attempt(None).is_err(), "no client certificate: nothing");
    assert!(
        attempt(Some("untrusted")).is_err(),
        "a certificate from another CA: nothing"
    );
    let plain = in_netns(&t.netns(Role::Gw), || {
        rt().block_on(async {
            let ch = tonic::transport::Endpoint::from_static("http://127.0.0.1:50443")
                .connect()
                .await?;
            let mut client = AgentClient::new(ch);
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                client
                    .status(pb::StatusRequest {})
                    .await?
                    .into_inner()
                    .version,
            )
        })
    });
    assert!(plain.is_err(), "plain TCP: nothing");
}
