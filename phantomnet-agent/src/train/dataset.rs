//! `dataset`: recorded samples (capture files, pcap files) → labeled CSV.
//!
//! Each input file is replayed through a fresh flow table in file order, so
//! the window features are exactly those the live detector computes; each
//! sample becomes one row, labeled by its source prefix.

use std::path::{Path, PathBuf};

use phantomnet_common::PacketSample;

use super::csvdata::CsvOut;
use super::labels::LabelRules;
use super::progress::Progress;
use super::{TrainError, pcap};
use crate::capture::CaptureReader;
use crate::features::extract;
use crate::flow::{FlowConfig, FlowTable, SourceKey};

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

/// Builds the CSV at `out` from `inputs`.
pub fn build_dataset(
    inputs: &[Input],
    rules: &LabelRules,
    flow: FlowConfig,
    out: &Path,
    progress: &Progress,
) -> Result<DatasetSummary, TrainError> {
    let file = std::fs::File::create(out).map_err(|e| TrainError::io(out, e))?;
    let mut csv =
        CsvOut::new(std::io::BufWriter::new(file)).map_err(|e| TrainError::Other(e.to_string()))?;
    let mut summary = DatasetSummary::default();
    for input in inputs {
        let mut table = FlowTable::new(flow);
        let mut emit = |s: &PacketSample, summary: &mut DatasetSummary| -> Result<(), TrainError> {
            let (_, stats) = table.observe(s);
            let features = match extract(s, &stats) {
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
        match input {
            Input::Capture(path) => {
                let len = std::fs::metadata(path)
                    .map_err(|e| TrainError::io(path, e))?
                    .len();
                let bar = progress.bar(
                    len.saturating_sub(16) / crate::capture::RECORD_LEN as u64,
                    &format!("capture {}", path.display()),
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
                summary.skipped_frames += got.skipped;
                let bar = progress.bar(
                    got.samples.len() as u64,
                    &format!("features {}", path.display()),
                );
                for s in &got.samples {
                    emit(s, &mut summary)?;
                    bar.inc(1);
                }
                bar.finish();
            }
        }
    }
    csv.finish()?;
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
        let sum = build_dataset(&inputs, &rules, FlowConfig::default(), &out, &progress).unwrap();
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
        build_dataset(&inputs, &rules, FlowConfig::default(), &out2, &progress).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    }
}
