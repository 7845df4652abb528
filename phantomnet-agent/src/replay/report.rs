//! What a replay found, per source and per scenario, in the terms an
//! operator judges a detector by: which attackers were enforced and how
//! fast, which benign sources were acted on (each by name), and how many
//! packets got through first.
use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

/// The first time the detector put something in force on a source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirstEnforcement {
    /// What was enforced (after the executor's fallbacks).
    pub action: String,
    /// The decision tree's rule number.
    pub rule: u8,
    /// From the source's first packet in the capture, in ms.
    pub after_ms: f64,
    /// The source's packets in the capture before it (× the capture's own
    /// sampling rate: an estimate when the capture was sampled).
    pub packets_before: u64,
}

/// One source, start to end of the capture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceOutcome {
    /// The source as the detector keys it: an address, or an IPv6 prefix
    /// (`enforcement.ipv6_source_prefix`).
    pub source: String,
    /// The labels file's name for it; `unlabeled` when no line covers it.
    pub scenario: String,
    pub attack: bool,
    /// Packets in the capture (× the capture's own sampling rate).
    pub packets: u64,
    /// Times the detector scored it (`Detector::observe`: on a meaningful
    /// change of its window, not per sample).
    pub decided: u64,
    pub first: Option<FirstEnforcement>,
    /// The strongest action put in force during the replay; `LOG` if none.
    pub strongest: String,
}

/// One scenario's sources, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioSummary {
    pub scenario: String,
    pub attack: bool,
    pub sources: usize,
    /// Sources with anything put in force (THROTTLE, DECEIVE or BLOCK).
    pub enforced: usize,
    /// Time from first packet to enforcement over the enforced sources, ms.
    pub tte_p50_ms: Option<f64>,
    pub tte_p99_ms: Option<f64>,
    /// Packets let through before enforcement, over the enforced sources.
    pub packets_before_p50: Option<u64>,
    pub packets_before_p99: Option<u64>,
    /// Benign scenarios: each source acted on, `ADDR ACTION (rule N)`.
    pub acted_on: Vec<String>,
}

/// Samples the replay read and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Records in the capture.
    pub records: u64,
    /// Of them, the inside observer's refusal samples
    /// (`sample_flags::REPLY`, `sampling::Reply::Refusal`): counted
    /// against the outside source they refuse, never a source or a
    /// decision of their own.
    pub refusals: u64,
    /// Of them, the inside observer's answer samples
    /// (`sampling::Reply::Answer`), counted the same way.
    pub answers: u64,
    /// Records the emulated sampling passed on.
    pub sampled: u64,
    /// Samples a signature rule had dropped in the kernel: the live
    /// pipeline skips them too.
    pub signature_dropped: u64,
    /// Samples the detector refused (a non-finite feature), as live.
    pub refused: u64,
    /// Scorings: samples on which a source's window had changed enough to
    /// be judged again (`Detector::observe`).
    pub decisions: u64,
    /// Decisions the evidence rule let reach the executor.
    pub past_evidence: u64,
    /// With `--marks rebuild`: the uniform samples, those the rebuild
    /// marked, and those where it agrees with the capture's own marks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt_marks: Option<super::RebuiltMarks>,
}

/// The whole report. Deterministic: the same capture, labels, config and
/// model give the same report, byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The sampling rate the capture was recorded at.
    pub recorded_every: u32,
    /// The data plane's sampling rate the replay emulated.
    pub sample_every: u32,
    pub counts: Counts,
    pub attack_sources: usize,
    pub attack_enforced: usize,
    pub benign_sources: usize,
    pub benign_acted_on: usize,
    pub scenarios: Vec<ScenarioSummary>,
    /// Every source, in address order.
    pub sources: Vec<SourceOutcome>,
}

/// Nearest-rank percentile of sorted values.
fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl Report {
    pub fn new(
        recorded_every: u32,
        sample_every: u32,
        counts: Counts,
        sources: Vec<SourceOutcome>,
    ) -> Report {
        let mut by: BTreeMap<(bool, &str), Vec<&SourceOutcome>> = BTreeMap::new();
        for s in &sources {
            by.entry((!s.attack, s.scenario.as_str()))
                .or_default()
                .push(s);
        }
        let scenarios = by
            .into_iter()
            .map(|((benign, name), list)| {
                let hit: Vec<&FirstEnforcement> =
                    list.iter().filter_map(|s| s.first.as_ref()).collect();
                let mut tte: Vec<f64> = hit.iter().map(|f| f.after_ms).collect();
                tte.sort_by(f64::total_cmp);
                let mut before: Vec<u64> = hit.iter().map(|f| f.packets_before).collect();
                before.sort_unstable();
                ScenarioSummary {
                    scenario: name.to_string(),
                    attack: !benign,
                    sources: list.len(),
                    enforced: hit.len(),
                    tte_p50_ms: percentile(&tte, 50.0),
                    tte_p99_ms: percentile(&tte, 99.0),
                    packets_before_p50: percentile(&before, 50.0),
                    packets_before_p99: percentile(&before, 99.0),
                    acted_on: if benign {
                        list.iter()
                            .filter_map(|s| {
                                s.first.as_ref().map(|f| {
                                    format!(
                                        "{} {} (rule {}, after {:.0} ms)",
                                        s.source, f.action, f.rule, f.after_ms
                                    )
                                })
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect();
        let count = |attack: bool, enforced: bool| {
            sources
                .iter()
                .filter(|s| s.attack == attack && (!enforced || s.first.is_some()))
                .count()
        };
        Report {
            recorded_every,
            sample_every,
            counts,
            attack_sources: count(true, false),
            attack_enforced: count(true, true),
            benign_sources: count(false, false),
            benign_acted_on: count(false, true),
            scenarios,
            sources,
        }
    }

    /// The operator's table, in Markdown.
    pub fn to_markdown(&self) -> String {
        let mut t = String::new();
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
        let n = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        let _ = writeln!(
            t,
            "Replay at 1-in-{} sampling (capture recorded at 1-in-{}): {} records, {} sampled, {} scorings.\n",
            self.sample_every,
            self.recorded_every,
            self.counts.records,
            self.counts.sampled,
            self.counts.decisions
        );
        if self.counts.refusals + self.counts.answers > 0 {
            let _ = writeln!(
                t,
                "Of the records, {} are the protected side's refusals and {} its answers (inside interface), counted against the sources they are sent to.\n",
                self.counts.refusals, self.counts.answers
            );
        }
        if let Some(m) = self.counts.rebuilt_marks {
            let _ = writeln!(
                t,
                "Marks rebuilt: {} of {} uniform samples marked ALSO_PRIORITY; the capture's own marks agree on {}.\n",
                m.marked, m.uniform, m.agreed
            );
        }
        let _ = writeln!(
            t,
            "| scenario | kind | sources | enforced | time to enforcement p50 / p99 (ms) | packets before p50 / p99 |"
        );
        let _ = writeln!(t, "|---|---|---:|---:|---:|---:|");
        for s in &self.scenarios {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} / {} | {} / {} |",
                s.scenario,
                if s.attack { "attack" } else { "benign" },
                s.sources,
                s.enforced,
                ms(s.tte_p50_ms),
                ms(s.tte_p99_ms),
                n(s.packets_before_p50),
                n(s.packets_before_p99),
            );
        }
        let share = |a: usize, b: usize| {
            if b == 0 {
                0.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        let _ = writeln!(
            t,
            "\nAttack sources enforced: {} of {} ({:.1} %). Benign sources acted on: {} of {}.",
            self.attack_enforced,
            self.attack_sources,
            share(self.attack_enforced, self.attack_sources),
            self.benign_acted_on,
            self.benign_sources
        );
        if self.benign_acted_on > 0 {
            let _ = writeln!(t, "\nBenign sources acted on:");
            for s in &self.scenarios {
                for a in &s.acted_on {
                    let _ = writeln!(t, "- {}: {a}", s.scenario);
                }
            }
        }
        let missed: Vec<&SourceOutcome> = self
            .sources
            .iter()
            .filter(|s| s.attack && s.first.is_none())
            .collect();
        if !missed.is_empty() {
            let _ = writeln!(t, "\nAttack sources never enforced:");
            for s in missed {
                let _ = writeln!(
                    t,
                    "- {}: {} ({} packets, {} decided)",
                    s.scenario, s.source, s.packets, s.decided
                );
            }
        }
        t
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A source 192.0.2.`last`, BLOCKed (rule 3) after `(ms, packets)`
    /// if `first` is given. The replay's other tests build reports with it.
    pub(in crate::replay) fn src(
        last: u8,
        scenario: &str,
        attack: bool,
        first: Option<(f64, u64)>,
    ) -> SourceOutcome {
        SourceOutcome {
            source: std::net::IpAddr::from([192, 0, 2, last]).to_string(),
            scenario: scenario.into(),
            attack,
            packets: 100,
            decided: 10,
            first: first.map(|(after_ms, packets_before)| FirstEnforcement {
                action: "BLOCK".into(),
                rule: 3,
                after_ms,
                packets_before,
            }),
            strongest: if first.is_some() { "BLOCK" } else { "LOG" }.into(),
        }
    }

    #[test]
    fn summarises_per_scenario_and_names_benign_sources_acted_on() {
        let r = Report::new(
            1,
            16,
            Counts::default(),
            vec![
                src(1, "syn_scan", true, Some((10.0, 5))),
                src(2, "syn_scan", true, Some((30.0, 9))),
                src(3, "syn_scan", true, None),
                src(4, "benign_http", false, Some((900.0, 40))),
                src(5, "benign_http", false, None),
            ],
        );
        assert_eq!((r.attack_sources, r.attack_enforced), (3, 2));
        assert_eq!((r.benign_sources, r.benign_acted_on), (2, 1));
        let scan = r
            .scenarios
            .iter()
            .find(|s| s.scenario == "syn_scan")
            .unwrap();
        assert_eq!((scan.sources, scan.enforced), (3, 2));
        assert_eq!(scan.tte_p50_ms, Some(10.0));
        assert_eq!(scan.tte_p99_ms, Some(30.0));
        assert_eq!(scan.packets_before_p99, Some(9));
        let http = r
            .scenarios
            .iter()
            .find(|s| s.scenario == "benign_http")
            .unwrap();
        assert_eq!(
            http.acted_on,
            vec!["192.0.2.4 BLOCK (rule 3, after 900 ms)".to_string()]
        );
        let md = r.to_markdown();
        assert!(md.contains("Benign sources acted on: 1 of 2."), "{md}");
        assert!(md.contains("- syn_scan: 192.0.2.3"), "{md}");
        // Attack scenarios first, then benign ones, each by name.
        let names: Vec<&str> = r.scenarios.iter().map(|s| s.scenario.as_str()).collect();
        assert_eq!(names, ["syn_scan", "benign_http"]);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile::<u64>(&[], 50.0), None);
        assert_eq!(percentile(&[7u64], 99.0), Some(7));
    }
}
