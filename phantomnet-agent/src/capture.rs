//! The capture file: recorded [`PacketSample`]s, written by the data plane's
//! sample reader and read by `phantomnet-agent dataset`.
//!
//! The format (header, record layout) is `phantomnet_common::capture`'s;
//! this module adds files, buffering and errors that name the file.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use phantomnet_common::PacketSample;

use phantomnet_common::capture::{self as format, HeaderError};
pub use phantomnet_common::capture::{MAGIC as CAPTURE_MAGIC, RECORD_LEN};
/// Bytes in the header.
pub const HEADER_LEN: u64 = format::HEADER_LEN as u64;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a PhantomNet capture file (bad magic at byte offset 0)")]
    BadMagic { path: PathBuf },
    #[error(
        "{path}: record size {found} at byte offset 8 does not match this build's PacketSample ({expected} bytes)"
    )]
    RecordSize {
        path: PathBuf,
        found: u32,
        expected: usize,
    },
    #[error("{path}: header is truncated ({len} of 16 bytes)")]
    TruncatedHeader { path: PathBuf, len: usize },
    #[error(
        "{path}: truncated record at byte offset {offset}: {len} of {RECORD_LEN} bytes (record {index})"
    )]
    TruncatedRecord {
        path: PathBuf,
        offset: u64,
        len: usize,
        index: u64,
    },
}

/// Appends samples to a new capture file.
pub struct CaptureWriter {
    path: PathBuf,
    out: BufWriter<File>,
    records: u64,
}

impl CaptureWriter {
    /// Creates (truncates) `path` and writes the header.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| CaptureError::Io {
            path: path.clone(),
            source,
        };
        let file = File::create(&path).map_err(io_err)?;
        let mut out = BufWriter::new(file);
        out.write_all(&format::header()).map_err(io_err)?;
        Ok(CaptureWriter {
            path,
            out,
            records: 0,
        })
    }

    /// Appends one record.
    pub fn write(&mut self, sample: &PacketSample) -> Result<(), CaptureError> {
        self.out
            .write_all(format::encode(sample))
            .map_err(|source| CaptureError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.records += 1;
        Ok(())
    }

    /// Flushes buffered records to the file.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        self.out.flush().map_err(|source| CaptureError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

impl Drop for CaptureWriter {
    fn drop(&mut self) {
        if let Err(e) = self.out.flush() {
            tracing::warn!(path = %self.path.display(), error = %e, "capture flush on drop failed");
        }
    }
}

/// Reads a capture file record by record; an iterator of
/// `Result<PacketSample, CaptureError>` that stops after the first error.
pub struct CaptureReader<R: Read = BufReader<File>> {
    path: PathBuf,
    input: R,
    index: u64,
    done: bool,
}

impl CaptureReader<BufReader<File>> {
    /// Opens `path` and checks the header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|source| CaptureError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_reader(path, BufReader::with_capacity(1 << 16, file))
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the header from `input`; `path` only names the source in errors.
    pub fn from_reader(path: PathBuf, mut input: R) -> Result<Self, CaptureError> {
        let mut header = [0u8; HEADER_LEN as usize];
        let len = read_full(&mut input, &mut header).map_err(|source| CaptureError::Io {
            path: path.clone(),
            source,
        })?;
        match format::check_header(&header[..len]) {
            Ok(()) => {}
            Err(HeaderError::BadMagic) => return Err(CaptureError::BadMagic { path }),
            Err(HeaderError::Truncated { len }) => {
                return Err(CaptureError::TruncatedHeader { path, len });
            }
            Err(HeaderError::RecordSize { found }) => {
                return Err(CaptureError::RecordSize {
                    path,
                    found,
                    expected: RECORD_LEN,
                });
            }
        }
        Ok(CaptureReader {
            path,
            input,
            index: 0,
            done: false,
        })
    }

    /// Records read so far.
    pub fn records_read(&self) -> u64 {
        self.index
    }
}

impl<R: Read> Iterator for CaptureReader<R> {
    type Item = Result<PacketSample, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = [0u8; RECORD_LEN];
        let len = match read_full(&mut self.input, &mut buf) {
            Ok(len) => len,
            Err(source) => {
                self.done = true;
                return Some(Err(CaptureError::Io {
                    path: self.path.clone(),
                    source,
                }));
            }
        };
        if len == 0 {
            self.done = true;
            return None;
        }
        if len < RECORD_LEN {
            self.done = true;
            return Some(Err(CaptureError::TruncatedRecord {
                path: self.path.clone(),
                offset: HEADER_LEN + self.index * RECORD_LEN as u64,
                len,
                index: self.index,
            }));
        }
        self.index += 1;
        Some(Ok(format::decode(&buf)))
    }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use phantomnet_common::{IPPROTO_TCP, TCP_SYN};

    fn sample(i: u32) -> PacketSample {
        let mut payload = [0u8; 64];
        for (j, b) in payload.iter_mut().enumerate() {
            *b = (i as u8).wrapping_add(j as u8);
        }
        PacketSample {
            timestamp_ns: 1_000_000 * i as u64,
            ifindex: 2,
            packet_len: 60 + i,
            src_addr: [10, 0, 0, i as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            dst_addr: [10, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            src_port: 40000 + i as u16,
            dst_port: 80,
            payload_len: 10,
            family: 4,
            protocol: IPPROTO_TCP,
            tcp_flags: TCP_SYN,
            ttl: 64,
            payload_valid: 10,
            payload,
            ..PacketSample::ZERO
        }
    }

    #[test]
    fn round_trip_preserves_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pncap");
        let mut w = CaptureWriter::create(&path).unwrap();
        let written: Vec<_> = (0..50).map(sample).collect();
        for s in &written {
            w.write(s).unwrap();
        }
        w.flush().unwrap();
        assert_eq!(w.records(), 50);
        drop(w);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            HEADER_LEN + 50 * RECORD_LEN as u64
        );
        let read: Vec<_> = CaptureReader::open(&path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, written);
    }

    #[test]
    fn truncated_record_names_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pncap");
        let mut w = CaptureWriter::create(&path).unwrap();
        for i in 0..3 {
            w.write(&sample(i)).unwrap();
        }
        drop(w);
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 28]).unwrap();
        let mut r = CaptureReader::open(&path).unwrap();
        assert!(r.next().unwrap().is_ok());
        assert!(r.next().unwrap().is_ok());
        let err = r.next().unwrap().unwrap_err();
        match &err {
            CaptureError::TruncatedRecord {
                offset, len, index, ..
            } => {
                assert_eq!(*offset, 16 + 2 * 128);
                assert_eq!(*len, 100);
                assert_eq!(*index, 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("byte offset 272"), "{err}");
        assert!(r.next().is_none());
    }

    #[test]
    fn wrong_magic_and_record_size_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"GIF89a-not-a-capture-file").unwrap();
        let err = CaptureReader::open(&path).err().unwrap();
        assert!(matches!(err, CaptureError::BadMagic { .. }), "{err}");

        let mut header = CAPTURE_MAGIC.to_vec();
        header.extend_from_slice(&96u32.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        std::fs::write(&path, &header).unwrap();
        let err = CaptureReader::open(&path).err().unwrap();
        assert!(
            matches!(err, CaptureError::RecordSize { found: 96, .. }),
            "{err}"
        );

        std::fs::write(&path, &CAPTURE_MAGIC[..8]).unwrap();
        let err = CaptureReader::open(&path).err().unwrap();
        assert!(
            matches!(err, CaptureError::TruncatedHeader { len: 8, .. }),
            "{err}"
        );
    }
}
