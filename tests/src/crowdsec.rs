//! A real CrowdSec Local API for the tests: Debian's `crowdsec` binary
//! (extracted by `cargo xtask setup`, see `prereq::CROWDSEC_DIR`) with a
//! config of the test's own — LAPI only, sqlite in a temp directory, no
//! online client — in a namespace of its own, wired to each gateway
//! namespace by a veth pair. Dropping it stops CrowdSec and deletes the
//! namespace (and with it the veths) and the directory.
use std::{
    fs,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use xtask::prereq::CROWDSEC_DIR;

use crate::in_netns;

pub const LAPI_PORT: u16 = 8080;

pub struct Lapi {
    ns: String,
    dir: PathBuf,
    child: Option<Child>,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Lapi {
    /// Starts a LAPI reachable from each namespace in `gateways` at
    /// [`Lapi::address`]`(i)`.
    pub fn start(name: &str, gateways: &[&Path]) -> Lapi {
        let ns = format!("pnt-{name}-cs");
        let dir = std::env::temp_dir().join(format!("phantomnet-crowdsec-{name}"));
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = fs::remove_dir_all(&dir);
        for sub in ["cfg", "data", "hub"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        run(Command::new("ip").args(["netns", "add", &ns]));
        run(Command::new("ip").args(["-n", &ns, "link", "set", "lo", "up"]));
        for (i, gw) in gateways.iter().enumerate() {
            let gw_ns = gw.file_name().unwrap().to_str().unwrap();
            let (a, b) = (format!("pncs{i}a"), format!("pncs{i}b"));
            run(Command::new("ip").args([
                "link", "add", &a, "netns", &ns, "type", "veth", "peer", "name", &b, "netns", gw_ns,
            ]));
            run(Command::new("ip").args([
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.254.{i}.1/30"),
                "dev",
                &a,
            ]));
            run(Command::new("ip").args(["-n", &ns, "link", "set", &a, "up"]));
            run(Command::new("ip").args([
                "-n",
                gw_ns,
                "addr",
                "add",
                &format!("10.254.{i}.2/30"),
                "dev",
                &b,
            ]));
            run(Command::new("ip").args(["-n", gw_ns, "link", "set", &b, "up"]));
        }
        let c = Path::new(CROWDSEC_DIR);
        for f in ["profiles.yaml", "simulation.yaml"] {
            fs::copy(c.join("etc/crowdsec").join(f), dir.join("cfg").join(f)).unwrap();
        }
        fs::write(dir.join("cfg/acquis.yaml"), "").unwrap();
        let t = dir.display();
        fs::write(
            dir.join("config.yaml"),
            format!(
                "common: {{daemonize: false, log_media: stdout, log_level: info, working_dir: {t}}}\n\
                 config_paths: {{config_dir: {t}/cfg/, data_dir: {t}/data/, simulation_path: {t}/cfg/simulation.yaml, \
                 hub_dir: {t}/hub/, index_path: {t}/hub/.index.json, notification_dir: {t}/cfg/notifications/, \
                 plugin_dir: {p}/usr/lib/crowdsec/plugins/}}\n\
                 crowdsec_service: {{acquisition_path: {t}/cfg/acquis.yaml}}\n\
                 db_config: {{type: sqlite, db_path: {t}/data/crowdsec.db, use_wal: true}}\n\
                 api:\n  client: {{credentials_path: {t}/cfg/local_api_credentials.yaml}}\n  \
                 server: {{listen_uri: 0.0.0.0:{LAPI_PORT}, profiles_path: {t}/cfg/profiles.yaml}}\n\
                 prometheus: {{enabled: false}}\n",
                p = c.display(),
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("crowdsec.log")).unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{ns}"))
            .arg(c.join("usr/bin/crowdsec"))
            .arg("-c")
            .arg(dir.join("config.yaml"))
            .arg("-no-cs")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start crowdsec");
        let lapi = Lapi {
            ns,
            dir,
            child: Some(child),
        };
        let netns = PathBuf::from(format!("/run/netns/{}", lapi.ns));
        let start = Instant::now();
        while !in_netns(&netns, || {
            TcpStream::connect(("127.0.0.1", LAPI_PORT)).is_ok()
        }) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the LAPI never listened:\n{}",
                fs::read_to_string(lapi.dir.join("crowdsec.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // cscli's own machine credentials (`cscli decisions` logs in with them).
        let creds = lapi.dir.join("cfg/local_api_credentials.yaml");
        lapi.cscli(&[
            "machines",
            "add",
            "cscli",
            "--auto",
            "-f",
            creds.to_str().unwrap(),
        ]);
        lapi
    }

    /// Stops CrowdSec (the namespace stays): the LAPI becomes unreachable.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The LAPI's URL as gateway `i` reaches it.
    pub fn url(&self, i: usize) -> String {
        format!("http://10.254.{i}.1:{LAPI_PORT}/")
    }

    /// Runs `cscli` against this LAPI; panics on failure.
    pub fn cscli(&self, args: &[&str]) -> String {
        let out = run(Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg(Path::new(CROWDSEC_DIR).join("usr/bin/cscli"))
            .arg("-c")
            .arg(self.dir.join("config.yaml"))
            .args(args)
            .stdin(Stdio::null()));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A bouncer API key, written to a file; returns the file.
    pub fn bouncer_key(&self, name: &str) -> PathBuf {
        let key = self.cscli(&["bouncers", "add", name, "-o", "raw"]);
        let path = self.dir.join(format!("{name}.key"));
        fs::write(&path, key.trim()).unwrap();
        path
    }

    /// A machine with a password, written to a file; returns the file.
    pub fn machine(&self, name: &str) -> PathBuf {
        let password = format!("pw-{name}-{}", std::process::id());
        self.cscli(&[
            "machines",
            "add",
            name,
            "--password",
            &password,
            "-f",
            "/dev/null",
        ]);
        let path = self.dir.join(format!("{name}.password"));
        fs::write(&path, &password).unwrap();
        path
    }

    /// Active decisions of every origin, as JSON alerts (`decisions list -a`).
    pub fn decisions(&self) -> serde_json::Value {
        let out = self.cscli(&["decisions", "list", "-a", "-o", "json"]);
        serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null)
    }

    /// The values (IPs) of active ban decisions with `origin`.
    pub fn banned(&self, origin: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .decisions()
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|alert| alert["decisions"].as_array().cloned().unwrap_or_default())
            .filter(|d| d["origin"] == origin && d["type"] == "ban")
            .filter_map(|d| d["value"].as_str().map(str::to_string))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

impl Drop for Lapi {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
