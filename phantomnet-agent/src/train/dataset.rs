//! `dataset`: recorded samples (capture files, pcap files) → labeled CSV.
//!
//! Each input file is replayed through a fresh flow table in file order, so
//! the window features are exactly those the live detector computes; each
//! sample becomes one row, labeled by its source prefix. A recording of
//! every packet can also be turned into the rows the detector scores at
//! the data plane's default sampling (emulated, [`Pass`]).

use std::path::{Path, PathBuf};

use phantomnet_common::{PacketSample, sample_flags};

use super::csvdata::{CsvOut, create_text};
use super::labels::LabelRules;
use super::progress::Progress;
use super::{TrainError, pcap};
use crate::capture::CaptureReader;
use crate::correlate::SignatureSet;
use crate::detect::valid_payload;
use crate::features::extract;
use crate::flow::{FlowConfig, FlowTable, SourceKey};
use crate::sampler::Sampler;

/// One recorded input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Capture(PathBuf),
    Pcap(PathBuf),
}

/// What a dataset run produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetSummary {
    pub rows: u64,
    pub attack_rows: u64,
    /// Frames in pcap files that were not IPv4/IPv6.
    pub skipped_frames: u64,
    /// Samples whose features were not finite (never expected).
    pub rejected: u64,
}

/// One pass over the inputs: the rows the live detector scores when the
/// data plane samples 1 in `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// 1: the inputs as recorded (each sample one row, rates scaled by
    /// the `FlowConfig`'s `sample_every`, the recording's rate). Above 1:
    /// the data plane's sampling emulated over inputs that hold every
    /// packet ([`Sampler`]: the seeded 1-in-N draw and priority sampling,
    /// the shipped default), and a row for every sample the detector would
    /// score then: each uniform sample, and each priority sample (a model
    /// trained on such rows scores them, `ModelMeta::scores_priority`).
    pub every: u32,
    /// Seeds the emulated draw (unused at 1).
    pub seed: u64,
}

impl Pass {
    pub const AS_RECORDED: Pass = Pass { every: 1, seed: 0 };
}

/// Builds the CSV at `out` from `inputs`, one pass per entry of `passes`
/// (each with fresh flow state, in order).
pub fn build_dataset(
    inputs: &[Input],
    rules: &LabelRules,
    flow: FlowConfig,
    passes: &[Pass],
    out: &Path,
    progress: &Progress,
) -> Result<DatasetSummary, TrainError> {
    let file = create_text(out)?;
    let mut csv = CsvOut::new(file).map_err(|e| TrainError::Other(e.to_string()))?;
    let mut summary = DatasetSummary::default();
    for (n, pass) in passes.iter().enumerate() {
        for input in inputs {
            let pass_flow = if pass.every > 1 {
                FlowConfig {
                    sample_every: pass.every,
                    ..flow
                }
            } else {
                flow
            };
            let mut table = FlowTable::new(pass_flow);
            let mut sampler = (pass.every > 1).then(|| Sampler::new(pass.every, true, pass.seed));
            let mut emit =
                |s: &PacketSample, summary: &mut DatasetSummary| -> Result<(), TrainError> {
                    // As `Detector::observe` scores a sample: recorded,
                    // with its signature match counted, then the window
                    // statistics as of its own time.
                    let taken = match &mut sampler {
                        None => *s,
                        Some(sampler) => match sampler.take(s) {
                            Some(taken) => taken,
                            None => return Ok(()),
                        },
                    };
                    // A reply (the inside observer's refusal or answer)
                    // is counted against its destination's source, as the
                    // detector counts it, and is no row of its own.
                    if taken.flags & sample_flags::REPLY != 0 {
                        table.record_reply(&taken);
                        return Ok(());
                    }
                    let every = table.config().sample_every;
                    let hit = !SignatureSet::shared()
                        .scan(valid_payload(&taken))
                        .is_empty();
                    let entry = table.record_matched(&taken, hit);
                    let stats = entry.windows.stats_at(every, taken.timestamp_ns);
                    let stats = table.with_server_side(&taken, taken.timestamp_ns, stats);
                    let features = extract(&taken, &stats);
                    let features = match features {
                        Ok(f) => f,
                        Err(e) => {
                            summary.rejected += 1;
                            tracing::warn!(error = %e, "sample rejected");
                            return Ok(());
                        }
                    };
                    let (label, kind) = rules.label(SourceKey::of_sample(s).ip());
                    csv.row(&features, label, kind)
                        .map_err(|e| TrainError::Other(format!("{}: {e}", out.display())))?;
                    summary.rows += 1;
                    summary.attack_rows += label as u64;
                    Ok(())
                };
            let tag = if pass.every > 1 {
                format!(" (1-in-{} emulated, seed {})", pass.every, pass.seed)
            } else {
                String::new()
            };
            match input {
                Input::Capture(path) => {
                    let len = std::fs::metadata(path)
                        .map_err(|e| TrainError::io(path, e))?
                        .len();
                    let bar = progress.bar(
                        len.saturating_sub(16) / crate::capture::RECORD_LEN as u64,
                        &format!("capture {}{tag}", path.display()),
                    );
                    for s in CaptureReader::open(path)? {
                        emit(&s?, &mut summary)?;
                        bar.inc(1);
                    }
                    bar.finish();
                }
                Input::Pcap(path) => {
                    let bar = progress.spinner(&format!("reading {}", path.display()));
                    let got = pcap::read_pcap(path, &mut |n| {
                        if n % 4096 == 0 {
                            bar.set_position(n)
                        }
                    })?;
                    bar.finish();
                    if n == 0 {
                        summary.skipped_frames += got.skipped;
                    }
                    let bar = progress.bar(
                        got.samples.len() as u64,
                        &format!("features {}{tag}", path.display()),
                    );
                    for s in &got.samples {
                        emit(s, &mut summary)?;
                        bar.inc(1);
                    }
                    bar.finish();
                }
            }
        }
    }
    csv.finish()?.finish().map_err(|e| TrainError::io(out, e))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureWriter;
    use crate::train::csvdata::read_csv;
    use crate::train::pcap::tests::{tcp_frame, write_pcap};

    #[test]
    fn captures_and_pcaps_become_labeled_rows_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        let pcap_path = dir.path().join("lab.pcap");
        let mut frames = Vec::new();
        for i in 0..30u64 {
            // 192.0.2.11 SYN-floods; 198.51.100.5 browses.
            frames.push((
                i * 1_000_000,
                tcp_frame(
                    [192, 0, 2, 11],
                    [10, 0, 0, 1],
                    1000 + i as u16,
                    80,
                    true,
                    &[],
                ),
            ));
            if i % 10 == 0 {
                frames.push((
                    i * 1_000_000 + 1,
                    tcp_frame(
                        [198, 51, 100, 5],
                        [10, 0, 0, 1],
                        50000,
                        443,
                        false,
                        b"GET / HTTP/1.1",
                    ),
                ));
            }
        }
        frames.push((40_000_000, vec![0xff; 20])); // not parseable: skipped
        write_pcap(&pcap_path, &frames);

        let cap_path = dir.path().join("lab.pncap");
        let mut w = CaptureWriter::create(&cap_path).unwrap();
        let samples = pcap::read_pcap(&pcap_path, &mut |_| {}).unwrap().samples;
        for s in &samples[..10] {
            w.write(s).unwrap();
        }
        drop(w);

        let rules = LabelRules::from_args(&["192.0.2.11/32=syn_flood".into()]).unwrap();
        let inputs = [
            Input::Pcap(pcap_path.clone()),
            Input::Capture(cap_path.clone()),
        ];
        let out = dir.path().join("d.csv");
        let progress = Progress::hidden();
        let sum = build_dataset(
            &inputs,
            &rules,
            FlowConfig::default(),
            &[Pass::AS_RECORDED],
            &out,
            &progress,
        )
        .unwrap();
        assert_eq!(sum.rows, 33 + 10);
        assert_eq!(sum.skipped_frames, 1);
        assert_eq!(
            sum.attack_rows,
            30 + samples[..10].iter().filter(|s| s.src_addr[3] == 11).count() as u64
        );

        let ds = read_csv(&out).unwrap();
        assert_eq!(ds.len(), 43);
        assert_eq!(ds.count_label(1) as u64, sum.attack_rows);
        for (l, t) in ds.labels.iter().zip(&ds.attack_types) {
            assert_eq!(*l == 1, t == "syn_flood");
        }
        // The flood rows have SYN ratio 1 and climbing rates.
        let flood: Vec<_> = ds
            .rows
            .iter()
            .zip(&ds.labels)
            .filter(|(_, l)| **l == 1)
            .map(|(r, _)| r)
            .collect();
        assert_eq!(flood[29][crate::features::index::SYN_RATIO], 1.0);
        assert!(
            flood[29][crate::features::index::BURST_RATE_10S]
                > flood[0][crate::features::index::BURST_RATE_10S]
        );

        // Same inputs, same bytes.
        let out2 = dir.path().join("d2.csv");
        build_dataset(
            &inputs,
            &rules,
            FlowConfig::default(),
            &[Pass::AS_RECORDED],
            &out2,
            &progress,
        )
        .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    }

    #[test]
    fn an_emulated_pass_holds_the_rows_the_detector_scores_at_that_rate() {
        let dir = tempfile::tempdir().unwrap();
        let cap = dir.path().join("lab.pncap");
        let mut w = CaptureWriter::create(&cap).unwrap();
        // 192.0.2.11 scans 3,200 ports (SYNs: each a priority sample);
        // 198.51.100.5 sends 3,200 pure ACKs of one flow (uniform only).
        let mut pkt = |src: [u8; 4], ts: u64, dport: u16, flags: u8| {
            let mut s = PacketSample {
                timestamp_ns: ts,
                family: 4,
                protocol: phantomnet_common::IPPROTO_TCP,
                src_port: 40000,
                dst_port: dport,
                tcp_flags: flags,
                ..PacketSample::ZERO
            };
            s.src_addr[..4].copy_from_slice(&src);
            w.write(&s).unwrap();
        };
        for i in 0..3200u64 {
            pkt(
                [192, 0, 2, 11],
                i * 1_000_000,
                1 + i as u16,
                phantomnet_common::TCP_SYN,
            );
            pkt(
                [198, 51, 100, 5],
                i * 1_000_000 + 1,
                443,
                phantomnet_common::TCP_ACK,
            );
        }
        drop(w);
        let rules = LabelRules::from_args(&["192.0.2.11/32=nmap_syn".into()]).unwrap();
        let inputs = [Input::Capture(cap)];
        let progress = Progress::hidden();
        let build = |passes: &[Pass], name: &str| {
            let out = dir.path().join(name);
            let sum = build_dataset(
                &inputs,
                &rules,
                FlowConfig::default(),
                passes,
                &out,
                &progress,
            )
            .unwrap();
            (sum, std::fs::read(&out).unwrap())
        };
        let one = Pass { every: 16, seed: 7 };
        let (sum, bytes) = build(&[one], "a.csv");
        // The ACKs: the 1-in-16 draw only, about 200.
        let benign = sum.rows - sum.attack_rows;
        assert!((140..=260).contains(&benign), "{benign}");
        // The SYNs: the draw plus every priority sample the per-source
        // bound lets through, far more than 1 in 16.
        assert!(sum.attack_rows > 400, "{}", sum.attack_rows);
        // The same seed gives the same bytes, another seed other rows.
        assert_eq!(build(&[one], "b.csv").1, bytes);
        assert_ne!(build(&[Pass { every: 16, seed: 8 }], "c.csv").1, bytes);
        // Passes add up: as recorded (every packet) and emulated.
        let (both, _) = build(&[Pass::AS_RECORDED, one], "d.csv");
        assert_eq!(both.rows, 6400 + sum.rows);
        // Rates are scaled by the emulated rate: the ACKs' 3,200 packets
        // over the 10 s window's span (9-10 s) stay about 330/s, not 1/16
        // of it.
        let ds = read_csv(&dir.path().join("a.csv")).unwrap();
        let last_ack = ds
            .rows
            .iter()
            .zip(&ds.labels)
            .filter(|(_, l)| **l == 0)
            .map(|(r, _)| r[crate::features::index::BURST_RATE_10S])
            .next_back()
            .unwrap();
        assert!((200.0..500.0).contains(&last_ack), "{last_ack}");
    }
}
