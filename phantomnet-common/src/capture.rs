//! The capture file's format: recorded [`PacketSample`]s. The agent writes
//! and reads files with it (`phantomnet_agent::capture`), the lab reads
//! them with it; the format lives here once.
//!
//! Layout (all integers little-endian):
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 8 | magic `b"PNCAP\0\0\x01"` |
//! | 8 | 4 | record size, `size_of::<PacketSample>()` (128) |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 128 × n | raw `PacketSample` records back to back |
//!
//! The records are the in-memory `repr(C)` layout on a little-endian host,
//! which is what the ring buffer hands the agent.
use core::mem::size_of;

use crate::PacketSample;

/// The file's first 8 bytes.
pub const MAGIC: [u8; 8] = *b"PNCAP\0\0\x01";
/// Bytes in the header.
pub const HEADER_LEN: usize = 16;
/// Bytes in one record.
pub const RECORD_LEN: usize = size_of::<PacketSample>();

const _: () = assert!(RECORD_LEN == 128);
#[cfg(not(target_endian = "little"))]
compile_error!("the capture format stores little-endian PacketSample records");

/// What is wrong with a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The first bytes are not [`MAGIC`] (or a prefix of it).
    BadMagic,
    /// Fewer than [`HEADER_LEN`] bytes, all a prefix of a valid header.
    Truncated { len: usize },
    /// The record size is not this build's [`RECORD_LEN`].
    RecordSize { found: u32 },
}

/// The header of a new file.
pub const fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let mut i = 0;
    while i < MAGIC.len() {
        h[i] = MAGIC[i];
        i += 1;
    }
    let size = (RECORD_LEN as u32).to_le_bytes();
    h[8] = size[0];
    h[9] = size[1];
    h[10] = size[2];
    h[11] = size[3];
    h
}

/// Checks the first bytes of a file (up to [`HEADER_LEN`] of them).
pub fn check_header(bytes: &[u8]) -> Result<(), HeaderError> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(HeaderError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(HeaderError::Truncated { len: bytes.len() });
    }
    let found = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if found as usize != RECORD_LEN {
        return Err(HeaderError::RecordSize { found });
    }
    Ok(())
}

/// One record's bytes as a sample.
pub fn decode(record: &[u8; RECORD_LEN]) -> PacketSample {
    // SAFETY: `record` holds exactly size_of::<PacketSample>() initialised
    // bytes, PacketSample is plain old data (any bit pattern is valid, no
    // padding: asserted in lib.rs) and read_unaligned needs no alignment.
    unsafe { core::ptr::read_unaligned(record.as_ptr().cast::<PacketSample>()) }
}

/// A sample's bytes as one record.
pub fn encode(sample: &PacketSample) -> &[u8; RECORD_LEN] {
    // SAFETY: PacketSample is repr(C), made only of integers and byte arrays
    // with no padding, so all RECORD_LEN bytes are initialised; a u8 array
    // has alignment 1, and the borrow keeps `sample` alive.
    unsafe { &*(sample as *const PacketSample).cast::<[u8; RECORD_LEN]>() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_and_records_round_trip() {
        let h = header();
        assert_eq!(check_header(&h), Ok(()));
        assert_eq!(
            check_header(&h[..5]),
            Err(HeaderError::Truncated { len: 5 })
        );
        assert_eq!(check_header(b"PNCAX"), Err(HeaderError::BadMagic));
        let mut bad = h;
        bad[8] = 64;
        assert_eq!(
            check_header(&bad),
            Err(HeaderError::RecordSize { found: 64 })
        );
        let mut s: PacketSample = decode(&[0u8; RECORD_LEN]);
        s.timestamp_ns = 7;
        s.src_addr[0] = 192;
        s.payload[63] = 9;
        assert_eq!(decode(encode(&s)), s);
    }
}
