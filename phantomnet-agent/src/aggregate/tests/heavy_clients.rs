//! A few heavy clients on a service (bulk downloads: the client's ACK
//! stream) neither hide a flood from many sources nor make one: the
//! trigger and its baseline count the spread of sources, less every source
//! proven heavy (`KeyState::spread_packets`).

use phantomnet_common::{IPPROTO_TCP, PacketSample, TCP_ACK};

use super::lab_flood::covers_the_flood_only;
use super::scenarios::{service, the_flood_attack};
use super::*;

const DST: [u8; 4] = [10, 0, 0, 2];
/// The flood test's random seed.
const SEED: u64 = 31;

/// A bulk download's ACK stream to `DST:80`: one connection, pure ACKs
/// with timestamps (66 bytes).
fn download(src: [u8; 4], port: u16) -> impl FnMut(&mut ChaCha8Rng, u64) -> PacketSample {
    move |_, ts| {
        let mut s = tcp(ts, v4(src), DST, 80);
        s.src_port = port;
        s.tcp_flags = TCP_ACK;
        s.packet_len = 66;
        s.ttl = 61;
        s
    }
}

/// The heavy demo's port 80 (`cargo xtask demo --heavy-clients`): two
/// downloads carry nearly all of it, so the flood on top (10,000 pps) is
/// less than twice the service's usual total, and under the 3× a baseline
/// of every packet asked for. Judged by its spread, it is 25 times more.
#[test]
fn a_spoofed_flood_on_a_service_its_downloads_fill_is_one_attack() {
    let mut r = rng(SEED);
    let cl = clients(&mut r, 50);
    // hping3's SYNs as the veth in the demo carries them: 54 bytes, not
    // padded to 60. (With padded ones too, the signature keeps the 54-byte
    // ones only: the downloads fill 40 % of the attack's samples, and the
    // coverage the synthesiser asks for falls with that share.)
    let mut flood = syn_flood(DST, 80);
    let stream = merge(vec![
        at_rate(
            &mut r,
            0.0,
            90.0,
            400.0,
            Origin::Benign,
            web_client(&cl, 80, DST),
        ),
        at_rate(
            &mut r,
            0.0,
            90.0,
            4_000.0,
            Origin::Benign,
            download([198, 51, 100, 200], 41_000),
        ),
        at_rate(
            &mut r,
            0.0,
            90.0,
            2_500.0,
            Origin::Benign,
            download([203, 0, 113, 200], 52_000),
        ),
        at_rate(
            &mut r,
            30.5,
            45.0,
            10_000.0,
            Origin::Attack,
            move |r, ts| {
                let mut s = flood(r, ts);
                s.packet_len = 54;
                s
            },
        ),
    ]);
    let (d, events) = run(&stream);
    let key = service(80, IPPROTO_TCP);
    // Its baseline of every packet is the downloads' (about 6,900 pps);
    // of its spread, the web clients' (about 400).
    let all = d.baseline_pps(&key).unwrap();
    assert!((5_500.0..8_500.0).contains(&all), "{all}");
    let report = the_flood_attack(&events, key);
    let sig = report.signature.as_ref().expect("a signature");
    covers_the_flood_only(sig, &stream, SEED);
}

/// Two downloads of the same size starting together on a busy service:
/// neither holds a majority of its samples, so one majority candidate
/// (Boyer–Moore) proved neither heavy, counted both as spread traffic
/// (40,000 pps against a baseline of 1,000) and, with the service's 40
/// clients in the tick, started a flood that was none.
#[test]
fn two_downloads_starting_together_on_a_busy_service_are_not_an_attack() {
    let mut r = rng(32);
    let cl = clients(&mut r, 40);
    let mut parts = vec![at_rate(
        &mut r,
        0.0,
        120.0,
        1_000.0,
        Origin::Benign,
        web_client(&cl, 80, DST),
    )];
    for (src, port) in [([198, 51, 100, 200], 41_000), ([203, 0, 113, 200], 52_000)] {
        parts.push(at_rate(
            &mut r,
            40.0,
            100.0,
            20_000.0,
            Origin::Benign,
            download(src, port),
        ));
    }
    let stream = merge(parts);
    let (_, events) = run(&stream);
    assert!(started(&events).is_empty(), "{events:#?}");
}
