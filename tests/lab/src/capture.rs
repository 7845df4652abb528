//! Reading the agent's capture files (`--capture`), with the format in
//! `phantomnet_common::capture` that the agent itself writes and reads.
use std::path::Path;

use anyhow::{Context, Result, bail};
use phantomnet_common::{
    PacketSample,
    capture::{self, HEADER_LEN, RECORD_LEN},
};

/// Every record of the capture at `path`, in order. A bad header or a
/// truncated last record is an error naming the file and the offset.
pub fn read(path: &Path) -> Result<Vec<PacketSample>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if let Err(e) = capture::check_header(&bytes[..bytes.len().min(HEADER_LEN)]) {
        bail!("{}: not a usable capture file: {e:?}", path.display());
    }
    let body = &bytes[HEADER_LEN..];
    let records = body.chunks_exact(RECORD_LEN);
    if !records.remainder().is_empty() {
        bail!(
            "{}: truncated record at byte offset {} ({} of {RECORD_LEN} bytes)",
            path.display(),
            HEADER_LEN + body.len() - records.remainder().len(),
            records.remainder().len()
        );
    }
    Ok(records
        .map(|r| capture::decode(r.try_into().expect("chunks_exact yields RECORD_LEN bytes")))
        .collect())
}
