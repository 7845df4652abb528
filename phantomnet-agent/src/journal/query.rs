//! A query's filter, validated once and matched against each event.
use ipnet::IpNet;
use phantomnet_common::EventAction;

use super::{EventQuery, JournalError, JournalEvent, MAX_PAGE_SIZE, Result, VERDICTS};

pub(super) struct Filter {
    since: u64,
    until: Option<u64>,
    source: Option<IpNet>,
    action: Option<EventAction>,
    verdict: Option<String>,
}

impl Filter {
    pub(super) fn new(q: &EventQuery) -> Result<Filter> {
        if !(1..=MAX_PAGE_SIZE).contains(&q.page_size) {
            return Err(JournalError::InvalidQuery(format!(
                "page_size {} is outside 1..={MAX_PAGE_SIZE}",
                q.page_size
            )));
        }
        let since = q.since.unwrap_or(0);
        let until = q.until;
        if let Some(until) = until.filter(|&u| since > u) {
            return Err(JournalError::InvalidQuery(format!(
                "since {since} is after until {until}"
            )));
        }
        let known = |what: &str, v: &Option<String>, all: &[&str]| -> Result<Option<String>> {
            match v {
                None => Ok(None),
                Some(s) => {
                    let up = s.to_ascii_uppercase();
                    if all.contains(&up.as_str()) {
                        Ok(Some(up))
                    } else {
                        Err(JournalError::InvalidQuery(format!(
                            "{what} {s:?} is not one of {all:?}"
                        )))
                    }
                }
            }
        };
        Ok(Filter {
            since,
            until,
            source: q.source,
            action: q.action,
            verdict: known("verdict", &q.verdict, &VERDICTS)?,
        })
    }

    pub(super) fn matches(&self, e: &JournalEvent) -> bool {
        e.time_unix_ns >= self.since
            && self.until.is_none_or(|u| e.time_unix_ns < u)
            && self.source.is_none_or(|n| n.contains(&e.source))
            && self.action.is_none_or(|a| a == e.action)
            && self.verdict.as_ref().is_none_or(|v| *v == e.verdict)
    }
}
