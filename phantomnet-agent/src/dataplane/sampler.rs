//! Reading `PacketSample`s from the ring buffer.
use aya::maps::{Map, MapData, RingBuf};
use phantomnet_common::PacketSample;
use tokio::io::unix::AsyncFd;

use super::DataplaneError;

/// What the reader has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleStats {
    /// Samples decoded.
    pub read: u64,
    /// Records of the wrong size (never written by a matching XDP program).
    pub malformed: u64,
}

/// The consumer side of `PN_SAMPLES`.
pub struct SampleReader {
    ring: AsyncFd<RingBuf<MapData>>,
    stats: SampleStats,
}

/// Decodes one ring-buffer record.
pub fn decode_sample(bytes: &[u8]) -> Option<PacketSample> {
    if bytes.len() != size_of::<PacketSample>() {
        return None;
    }
    // SAFETY: the length is checked; PacketSample is Pod (any bytes are valid).
    Some(unsafe { bytes.as_ptr().cast::<PacketSample>().read_unaligned() })
}

impl SampleReader {
    /// Must be called inside a tokio runtime (it registers the ring's fd).
    pub(crate) fn new(map: Map) -> Result<SampleReader, DataplaneError> {
        let ring = RingBuf::try_from(map)
            .map_err(|e| DataplaneError::map("opening the sample ring buffer", e))?;
        // SAFETY: the RingBuf owns its map fd for as long as the AsyncFd
        // owns the RingBuf, and always reports that same fd.
        let ring = unsafe { AsyncFd::register(ring) }.map_err(|e| {
            DataplaneError::io(
                "registering the sample ring buffer",
                std::io::Error::other(e.to_string()),
            )
        })?;
        Ok(SampleReader {
            ring,
            stats: SampleStats::default(),
        })
    }

    pub fn stats(&self) -> SampleStats {
        self.stats
    }

    /// Appends every sample available now to `out`, without waiting;
    /// returns how many it appended.
    pub fn drain(&mut self, out: &mut Vec<PacketSample>) -> usize {
        let before = out.len();
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            match decode_sample(&item) {
                Some(s) => out.push(s),
                None => self.stats.malformed += 1,
            }
        }
        let n = out.len() - before;
        self.stats.read += n as u64;
        n
    }

    /// Waits until samples are available, then appends them all to `out`.
    pub async fn next_batch(
        &mut self,
        out: &mut Vec<PacketSample>,
    ) -> Result<usize, DataplaneError> {
        loop {
            let n = self.drain(out);
            if n > 0 {
                return Ok(n);
            }
            let mut guard = self
                .ring
                .readable_mut()
                .await
                .map_err(|e| DataplaneError::io("waiting on the sample ring buffer", e))?;
            guard.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_only_whole_records() {
        let mut bytes = vec![0u8; size_of::<PacketSample>()];
        bytes[0] = 7; // timestamp_ns, little-endian
        bytes[16] = 192; // src_addr[0]
        let s = decode_sample(&bytes).unwrap();
        assert_eq!((s.timestamp_ns, s.src_addr[0]), (7, 192));
        assert!(decode_sample(&bytes[1..]).is_none());
        bytes.push(0);
        assert!(decode_sample(&bytes).is_none());
    }
}
