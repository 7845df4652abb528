//! `[[intel.feeds]]` and `[crowdsec]`: what parses, and every refusal named
//! by its key.
use super::tests::{err, with};
use super::*;
use crate::correlate::FeedFormat;
use crate::decide::Action;

const FEED: &str = "[[intel.feeds]]\nname = \"firehol_level1\"\nsource = \"https://iplists.example/firehol_level1.netset\"\nformat = \"firehol\"\n";

#[test]
fn a_feed_parses_with_its_defaults() {
    let c = Config::from_toml_str(&with(FEED)).unwrap();
    let f = &c.intel.feeds[0];
    assert_eq!(f.name, "firehol_level1");
    assert_eq!(
        f.source,
        FeedSource::Https("https://iplists.example/firehol_level1.netset".into())
    );
    assert_eq!(f.format, FeedFormat::Firehol);
    assert_eq!(
        (f.weight, f.interval_secs, f.block, f.max_bytes),
        (1.0, 3600, false, 64 << 20)
    );
    assert_eq!(f.block_ttl(), std::time::Duration::from_secs(3 * 3600));
    let file = with(
        "[[intel.feeds]]\nname = \"drop\"\nsource = \"/var/lib/phantomnet/drop.json\"\nformat = \"spamhaus\"\nblock = true\ninterval_secs = 60\n",
    );
    let c = Config::from_toml_str(&file).unwrap();
    assert_eq!(
        c.intel.feeds[0].source,
        FeedSource::File("/var/lib/phantomnet/drop.json".into())
    );
    assert_eq!(
        c.intel.feeds[0].block_ttl(),
        std::time::Duration::from_secs(3600),
        "at least an hour"
    );
}

#[test]
fn bad_feeds_are_refused_by_key() {
    let feed = |extra: &str| with(&format!("{FEED}{extra}"));
    let cases = [
        (
            with(
                "[[intel.feeds]]\nname = \"x\"\nsource = \"http://plain.example/x\"\nformat = \"plain\"\n",
            ),
            "intel.feeds",
            "plain HTTP",
        ),
        (
            with("[[intel.feeds]]\nname = \"x\"\nsource = \"relative/path\"\nformat = \"plain\"\n"),
            "intel.feeds",
            "absolute path",
        ),
        (
            with("[[intel.feeds]]\nname = \"x\"\nsource = \"/f\"\nformat = \"csv\"\n"),
            "intel.feeds",
            "unknown variant",
        ),
        (feed("weight = 0.0\n"), "intel.feeds[0].weight", "(0, 1]"),
        (feed("weight = 1.5\n"), "intel.feeds[0].weight", "(0, 1]"),
        (
            feed("interval_secs = 5\n"),
            "intel.feeds[0].interval_secs",
            "10 .. 604800",
        ),
        (
            feed("block_ttl_secs = 1\n"),
            "intel.feeds[0].block_ttl_secs",
            "60 ..",
        ),
        (feed("max_bytes = 0\n"), "intel.feeds[0].max_bytes", "1 GiB"),
        (
            feed("ca_file = \"ca.pem\"\n"),
            "intel.feeds[0].ca_file",
            "absolute",
        ),
        (
            with(&format!("{FEED}{FEED}")),
            "intel.feeds[1].name",
            "used twice",
        ),
        (
            with("[[intel.feeds]]\nname = \"has space\"\nsource = \"/f\"\nformat = \"plain\"\n"),
            "intel.feeds[0].name",
            "A-Z",
        ),
        (
            with(
                "[[intel.feeds]]\nname = \"f\"\nsource = \"/f\"\nformat = \"plain\"\nca_file = \"/ca.pem\"\n",
            ),
            "intel.feeds[0].ca_file",
            "https://",
        ),
    ];
    for (text, key, reason) in cases {
        let shown = err(&text).to_string();
        assert!(shown.contains(key), "{text}: {shown:?} lacks {key}");
        assert!(shown.contains(reason), "{text}: {shown:?} lacks {reason:?}");
    }
}

const CS: &str = "[crowdsec]\nlapi_url = \"http://127.0.0.1:8080/\"\n";

#[test]
fn crowdsec_parses_both_roles() {
    let text = with(&format!(
        "{CS}\n[crowdsec.bouncer]\napi_key_file = \"/etc/phantomnet/cs.key\"\n\n[crowdsec.watcher]\nmachine_id = \"gw1\"\npassword_file = \"/etc/phantomnet/cs.pw\"\npush = [\"block\"]\n"
    ));
    let c = Config::from_toml_str(&text).unwrap();
    let cs = c.crowdsec.unwrap();
    assert_eq!(cs.bouncer.unwrap().interval_secs, 10);
    assert_eq!(cs.watcher.unwrap().push_actions(), [Action::Block]);
    assert_eq!(Config::from_toml_str(&with("")).unwrap().crowdsec, None);
}

#[test]
fn bad_crowdsec_settings_are_refused_by_key() {
    let bouncer = "[crowdsec.bouncer]\napi_key_file = \"/k\"\n";
    let cases = [
        (with(CS), "crowdsec", "bouncer"),
        (
            with(&format!("[crowdsec]\nlapi_url = \"ftp://x/\"\n{bouncer}")),
            "crowdsec.lapi_url",
            "http://",
        ),
        (
            with(&format!("{CS}[crowdsec.bouncer]\napi_key_file = \"k\"\n")),
            "crowdsec.bouncer.api_key_file",
            "absolute",
        ),
        (
            with(&format!("{CS}{bouncer}interval_secs = 0\n")),
            "crowdsec.bouncer.interval_secs",
            "1 .. 3600",
        ),
        (
            with(&format!(
                "{CS}[crowdsec.watcher]\nmachine_id = \"\"\npassword_file = \"/p\"\n"
            )),
            "crowdsec.watcher.machine_id",
            "empty",
        ),
        (
            with(&format!(
                "{CS}[crowdsec.watcher]\nmachine_id = \"m\"\npassword_file = \"/p\"\npush = [\"LOG\"]\n"
            )),
            "crowdsec.watcher.push[0]",
            "BLOCK, THROTTLE, DECEIVE",
        ),
        (
            with(&format!(
                "{CS}[crowdsec.watcher]\nmachine_id = \"m\"\npassword_file = \"/p\"\npush = [\"NUKE\"]\n"
            )),
            "crowdsec.watcher.push[0]",
            "not one of",
        ),
    ];
    for (text, key, reason) in cases {
        let shown = err(&text).to_string();
        assert!(shown.contains(key), "{text}: {shown:?} lacks {key}");
        assert!(shown.contains(reason), "{text}: {shown:?} lacks {reason:?}");
    }
}
