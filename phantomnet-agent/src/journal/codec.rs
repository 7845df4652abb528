//! The stored record: a format byte, then the event in postcard.
use super::{FORMAT_VERSION, JournalError, JournalEvent, NewEvent, Result, VERDICTS};

/// Key (8 bytes) plus record: what the `stored_bytes` meta counts.
pub(super) fn record_bytes(record_len: usize) -> u64 {
    8 + record_len as u64
}

pub(super) fn encode(e: &NewEvent) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Serialising owned strings, floats and an address into a Vec cannot fail.
    postcard::to_io(e, &mut out).expect("postcard encoding into a Vec");
    out
}

pub(super) fn decode(id: u64, bytes: &[u8]) -> Result<JournalEvent> {
    let corrupt = |reason: String| JournalError::Corrupt { id, reason };
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty record".into()))?;
    if version != FORMAT_VERSION {
        return Err(corrupt(format!("unknown format version {version}")));
    }
    let (event, rest): (NewEvent, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| corrupt(e.to_string()))?;
    if !rest.is_empty() {
        return Err(corrupt(format!("{} trailing bytes", rest.len())));
    }
    Ok(JournalEvent::from_new(id, event))
}

/// An [`EventAction`] is stored as its name (the journal's format since
/// version 1, when actions were strings).
pub(super) mod action_by_name {
    use phantomnet_common::EventAction;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(a: &EventAction, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EventAction, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        EventAction::from_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown action {name:?}")))
    }
}

pub(super) fn validate_event(index: usize, e: &NewEvent) -> Result<()> {
    let bad = |field, reason: String| JournalError::InvalidEvent {
        index,
        field,
        reason,
    };
    if !VERDICTS.contains(&e.verdict.as_str()) {
        return Err(bad(
            "verdict",
            format!("{:?} is not one of {VERDICTS:?}", e.verdict),
        ));
    }
    Ok(())
}
