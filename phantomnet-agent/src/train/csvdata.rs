//! The labeled CSV: a header of exactly the feature names of one schema
//! (the 22 of v2, which `dataset` writes, or the 15 of v1), then `label`
//! (0 benign, 1 attack), then optionally `attack_type`.
//!
//! Reading is strict: a row with the wrong number of columns, a value that
//! is not a finite number, or a label other than 0/1 is an error naming its
//! line. The one documented fix-up: an empty feature or label cell reads
//! as 0 (the missing-value rule); the count of such cells is logged.

use std::io::Write;
use std::path::Path;

use crate::features::{FEATURE_COUNT, FEATURE_NAMES, FeatureVector, Schema};

use super::TrainError;

pub const LABEL_COLUMN: &str = "label";
pub const ATTACK_TYPE_COLUMN: &str = "attack_type";

/// Rows read from a CSV.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// The schema of the file's header; a v1 file's rows have the v2
    /// features 0.
    pub schema: Schema,
    pub rows: Vec<[f64; FEATURE_COUNT]>,
    pub labels: Vec<u32>,
    /// The `attack_type` column, empty strings if the file has none.
    pub attack_types: Vec<String>,
    /// Empty cells read as 0.
    pub empty_cells: u64,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn count_label(&self, label: u32) -> usize {
        self.labels.iter().filter(|&&l| l == label).count()
    }
}

/// The header line.
pub fn header() -> Vec<&'static str> {
    let mut h: Vec<&str> = FEATURE_NAMES.to_vec();
    h.push(LABEL_COLUMN);
    h.push(ATTACK_TYPE_COLUMN);
    h
}

pub fn read_csv(path: &Path) -> Result<Dataset, TrainError> {
    read_csv_from(path, open_text(path)?)
}

/// gzip's magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens a CSV for reading, plain or gzip-compressed (told by its first
/// two bytes, whatever its name): the shipped training data is
/// `models/lab-dataset.csv.gz`, whose text is several times its size.
pub fn open_text(path: &Path) -> Result<Box<dyn std::io::Read>, TrainError> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut r = std::io::BufReader::new(file);
    let gzip = r
        .fill_buf()
        .map_err(|e| TrainError::io(path, e))?
        .starts_with(&GZIP_MAGIC);
    Ok(if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

/// Creates a CSV for writing: gzip-compressed if its name ends in `.gz`,
/// plain otherwise. [`CsvOut::finish`] then [`TextOut::finish`] complete it.
pub fn create_text(path: &Path) -> Result<TextOut, TrainError> {
    let file =
        std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| TrainError::io(path, e))?);
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        TextOut::Gzip(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        ))
    } else {
        TextOut::Plain(file)
    })
}

/// A CSV being written by [`create_text`].
pub enum TextOut {
    Plain(std::io::BufWriter<std::fs::File>),
    Gzip(flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>),
}

impl Write for TextOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            TextOut::Plain(w) => w.write(buf),
            TextOut::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            TextOut::Plain(w) => w.flush(),
            TextOut::Gzip(w) => w.flush(),
        }
    }
}

impl TextOut {
    /// Writes the gzip trailer, if any, and flushes the file.
    pub fn finish(self) -> std::io::Result<()> {
        let mut file = match self {
            TextOut::Plain(w) => w,
            TextOut::Gzip(w) => w.finish()?,
        };
        file.flush()
    }
}

/// Turns CRLF line endings into LF as the bytes stream through.
///
/// The csv crate ends a record at the `\r` of a CRLF and counts the `\n`
/// into the next record's start, so with Windows line endings every
/// position it reports is one line early. Hand-written because no
/// maintained crate offers this as a `Read` adapter, and it is a dozen
/// lines. A lone `\r` (old Mac endings) is kept; the csv reader ends the
/// record there, as before.
struct CrlfToLf<R> {
    inner: R,
    /// A `\r` held back at the end of the last read: its `\n` may follow.
    pending_cr: bool,
}

impl<R: std::io::Read> std::io::Read for CrlfToLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let start = usize::from(self.pending_cr);
        let n = self.inner.read(&mut buf[start..])?;
        if self.pending_cr {
            buf[0] = b'\r';
            self.pending_cr = false;
            if n == 0 {
                return Ok(1);
            }
        } else if n == 0 {
            return Ok(0);
        }
        let len = start + n;
        let mut out = 0;
        for i in 0..len {
            let b = buf[i];
            if b == b'\r' && i + 1 == len {
                self.pending_cr = true;
                break;
            }
            if b == b'\r' && buf[i + 1] == b'\n' {
                continue;
            }
            buf[out] = b;
            out += 1;
        }
        if out == 0 && self.pending_cr {
            // Only the held-back `\r` so far: read on rather than signal EOF.
            return self.read(buf);
        }
        Ok(out)
    }
}

pub fn read_csv_from(path: &Path, input: impl std::io::Read) -> Result<Dataset, TrainError> {
    let input = CrlfToLf {
        inner: input,
        pending_cr: false,
    };
    let row_err = |line: u64, message: String| TrainError::Csv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(input);
    let mut records = reader.records();
    let head = match records.next() {
        None => return Err(row_err(1, "the file is empty (expected a header)".into())),
        Some(r) => r.map_err(|e| row_err(1, e.to_string()))?,
    };
    // The column count alone is ambiguous (v2 with `attack_type` and v3
    // without it both have 24): the header is checked against every schema
    // of that width, and the newest one it matches is taken; if none
    // matches, the error names the first wrong column of the newest.
    let expected_name = |width: usize, i: usize| {
        if i < width {
            FEATURE_NAMES[i]
        } else if i == width {
            LABEL_COLUMN
        } else {
            ATTACK_TYPE_COLUMN
        }
    };
    let candidates: Vec<Schema> = Schema::ALL
        .iter()
        .rev()
        .copied()
        .filter(|s| head.len() == s.count() + 1 || head.len() == s.count() + 2)
        .collect();
    if candidates.is_empty() {
        // Every schema this build reads, newest first: "v6 (26), v5 (25), …".
        let schemas: Vec<String> = Schema::ALL
            .iter()
            .rev()
            .map(|s| format!("v{} ({})", s.version(), s.count()))
            .collect();
        return Err(row_err(
            1,
            format!(
                "header has {} columns; expected the feature names of schema {}, then `label`, and optionally `attack_type`",
                head.len(),
                schemas.join(", ")
            ),
        ));
    }
    let first_wrong = |s: Schema| {
        head.iter()
            .enumerate()
            .find(|&(i, name)| name != expected_name(s.count(), i))
            .map(|(i, name)| (i, name.to_string(), expected_name(s.count(), i)))
    };
    let schema = match candidates
        .iter()
        .copied()
        .find(|&s| first_wrong(s).is_none())
    {
        Some(s) => s,
        None => {
            let (i, name, expected) = first_wrong(candidates[0]).unwrap_or_default();
            return Err(row_err(
                1,
                format!("header column {} is {name:?}, expected {expected:?}", i + 1),
            ));
        }
    };
    let width = schema.count();
    let with_type = head.len() == width + 2;
    let ncols = head.len();
    let mut ds = Dataset {
        schema,
        ..Dataset::default()
    };
    for rec in records {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            row_err(line, e.to_string())
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.len() != ncols {
            return Err(row_err(
                line,
                format!("{} columns, expected {ncols} as in the header", rec.len()),
            ));
        }
        let mut row = [0.0; FEATURE_COUNT];
        for (j, v) in row.iter_mut().enumerate().take(width) {
            let cell = &rec[j];
            if cell.is_empty() {
                ds.empty_cells += 1;
                continue;
            }
            *v = cell.parse::<f64>().map_err(|_| {
                row_err(
                    line,
                    format!("{} = {cell:?} is not a number", FEATURE_NAMES[j]),
                )
            })?;
        }
        FeatureVector::new(row).map_err(|e| row_err(line, e.to_string()))?;
        let label = match &rec[width] {
            "" => {
                ds.empty_cells += 1;
                0
            }
            "0" => 0,
            "1" => 1,
            other => return Err(row_err(line, format!("label {other:?} is not 0 or 1"))),
        };
        ds.rows.push(row);
        ds.labels.push(label);
        ds.attack_types.push(if with_type {
            rec[width + 1].to_string()
        } else {
            String::new()
        });
    }
    if ds.empty_cells > 0 {
        tracing::warn!(
            path = %path.display(),
            cells = ds.empty_cells,
            "empty cells read as 0 (missing-value rule)"
        );
    }
    Ok(ds)
}

/// Writes rows with the full header. `f64`s are written in Rust's shortest
/// round-trip form, so reading the file back gives the same bits.
pub struct CsvOut<W: Write> {
    w: csv::Writer<W>,
}

impl<W: Write> CsvOut<W> {
    pub fn new(out: W) -> Result<Self, csv::Error> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(header())?;
        Ok(CsvOut { w })
    }

    pub fn row(
        &mut self,
        f: &FeatureVector,
        label: u32,
        attack_type: &str,
    ) -> Result<(), csv::Error> {
        let mut buf = format_fields(f);
        buf.push(label.to_string());
        buf.push(attack_type.to_string());
        self.w.write_record(&buf)
    }

    pub fn finish(mut self) -> Result<W, TrainError> {
        self.w
            .flush()
            .map_err(|e| TrainError::Other(e.to_string()))?;
        self.w
            .into_inner()
            .map_err(|e| TrainError::Other(e.to_string()))
    }
}

fn format_fields(f: &FeatureVector) -> Vec<String> {
    f.as_array().iter().map(|v| format!("{v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(with_type: bool) -> String {
        let mut h = FEATURE_NAMES.join(",");
        h.push_str(",label");
        if with_type {
            h.push_str(",attack_type");
        }
        h
    }

    fn row(vals: &str, label: &str) -> String {
        format!("{vals},{label}")
    }

    fn fifteen(v: &str) -> String {
        vec![v; FEATURE_COUNT].join(",")
    }

    fn parse(text: &str) -> Result<Dataset, TrainError> {
        read_csv_from(Path::new("t.csv"), text.as_bytes())
    }

    #[test]
    fn good_rows_parse_and_empty_cells_become_zero() {
        let mut cells: Vec<String> = (0..FEATURE_COUNT).map(|i| format!("{}.5", i)).collect();
        cells[3] = String::new();
        let text = format!(
            "{}\n{}\n{}\n",
            head(true),
            row(&fifteen("1"), "1,syn_flood"),
            row(&cells.join(","), "0,benign")
        );
        let ds = parse(&text).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.labels, vec![1, 0]);
        assert_eq!(ds.attack_types, vec!["syn_flood", "benign"]);
        assert_eq!(ds.rows[1][3], 0.0);
        assert_eq!(ds.rows[1][4], 4.5);
        assert_eq!(ds.empty_cells, 1);
        // Without the optional column.
        let ds = parse(&format!("{}\n{}\n", head(false), row(&fifteen("2"), "0"))).unwrap();
        assert_eq!(ds.attack_types, vec![""]);
    }

    #[test]
    fn bad_rows_are_reported_with_their_line_number() {
        let h = head(true);
        let good = row(&fifteen("1"), "0,benign");
        let cases = [
            (
                format!("{h}\n{good}\n{}\n", row(&fifteen("1"), "0")),
                3,
                "columns",
            ),
            (
                format!("{h}\n{good}\n{good}\n{}\n", row(&fifteen("abc"), "0,x")),
                4,
                "not a number",
            ),
            (
                format!("{h}\n{}\n", row(&fifteen("1"), "2,x")),
                2,
                "not 0 or 1",
            ),
            (
                format!("{h}\n{}\n", row(&fifteen("1"), "yes,x")),
                2,
                "not 0 or 1",
            ),
            (
                format!("{h}\n{}\n", row(&fifteen("NaN"), "0,x")),
                2,
                "not finite",
            ),
            (
                format!("{h}\n{}\n", row(&fifteen(" 1"), "0,x")),
                2,
                "not a number",
            ),
        ];
        for (text, line, needle) in cases {
            // The same line numbers with Windows line endings (Excel, Python's csv).
            for text in [text.clone(), text.replace('\n', "\r\n")] {
                match parse(&text) {
                    Err(TrainError::Csv {
                        line: l, message, ..
                    }) => {
                        assert_eq!(l, line, "{text:?}: {message}");
                        assert!(message.contains(needle), "{message} / {needle}");
                    }
                    other => panic!("expected a CSV error, got {other:?}"),
                }
            }
        }
    }

    #[test]
    fn crlf_is_read_as_lf_across_read_boundaries() {
        use std::io::Read;
        // One byte per read: every CR lands at the end of a buffer.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        for text in ["a\r\nb\r\n", "a\rb\r", "\r\n\r\n", "x\r"] {
            let mut out = String::new();
            CrlfToLf {
                inner: Dribble(text.as_bytes()),
                pending_cr: false,
            }
            .read_to_string(&mut out)
            .unwrap();
            assert_eq!(out, text.replace("\r\n", "\n"), "{text:?}");
        }
    }

    #[test]
    fn wrong_headers_are_refused() {
        let mut names: Vec<&str> = FEATURE_NAMES.to_vec();
        names.swap(0, 1);
        let text = format!("{},label\n", names.join(","));
        let err = parse(&text).unwrap_err();
        assert!(err.to_string().contains("protocol_encoding"), "{err}");
        let err = parse("a,b,c\n").unwrap_err().to_string();
        assert!(err.contains("3 columns"), "{err}");
        // Every schema this build reads is named, with its width.
        assert!(
            err.contains("schema v7 (29), v6 (26), v5 (25), v4 (24), v3 (23), v2 (22), v1 (15)"),
            "{err}"
        );
        assert!(parse("").is_err());
    }

    #[test]
    fn written_rows_read_back_bit_for_bit() {
        let mut out = CsvOut::new(Vec::new()).unwrap();
        let v = [
            0.1,
            1.0 / 3.0,
            2.0,
            1.0,
            1e-9,
            12345.678,
            0.0,
            7.0,
            1e12,
            7.99,
            3.0,
            4.0,
            5.0,
            0.25,
            64.0,
            0.5,
            17.25,
            1024.0,
            0.75,
            0.125,
            1.0 / 255.0,
            0.0,
            3.0,
            12.0,
            40.0,
            2.0,
            55.5,
            0.75,
            74.0,
        ];
        let f = FeatureVector::new(v).unwrap();
        out.row(&f, 1, "port_scan").unwrap();
        let bytes = out.finish().unwrap();
        let ds = read_csv_from(Path::new("x"), &bytes[..]).unwrap();
        assert_eq!(ds.rows[0].map(f64::to_bits), v.map(f64::to_bits));
        assert_eq!(ds.attack_types[0], "port_scan");
        assert_eq!(ds.schema, Schema::V7);
    }

    #[test]
    fn a_gzip_csv_reads_as_its_text_whatever_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let f = FeatureVector::new([0.5; FEATURE_COUNT]).unwrap();
        let write = |name: &str| {
            let path = dir.path().join(name);
            let mut out = CsvOut::new(create_text(&path).unwrap()).unwrap();
            out.row(&f, 1, "syn_flood").unwrap();
            out.row(&f, 0, "benign").unwrap();
            out.finish().unwrap().finish().unwrap();
            path
        };
        let plain = write("d.csv");
        let gz = write("d.csv.gz");
        let raw = std::fs::read(&gz).unwrap();
        assert!(raw.starts_with(&GZIP_MAGIC), "written compressed");
        assert_ne!(raw, std::fs::read(&plain).unwrap());
        // Told by content, not by name.
        let renamed = dir.path().join("renamed.csv");
        std::fs::copy(&gz, &renamed).unwrap();
        let a = read_csv(&plain).unwrap();
        for p in [&gz, &renamed] {
            let b = read_csv(p).unwrap();
            assert_eq!(b.labels, a.labels);
            assert_eq!(b.attack_types, a.attack_types);
            assert_eq!(b.rows, a.rows);
        }
        // A truncated gzip file is an error, not a short dataset.
        std::fs::write(&renamed, &raw[..raw.len() - 12]).unwrap();
        assert!(read_csv(&renamed).is_err());
    }

    #[test]
    fn v2_with_attack_type_and_v3_without_it_are_told_apart_by_name() {
        // Both headers have 24 columns.
        let v2 = format!("{},label,attack_type", FEATURE_NAMES[..22].join(","));
        let ds = parse(&format!(
            "{v2}\n{}\n",
            vec!["1"; 22].join(",") + ",1,syn_flood"
        ))
        .unwrap();
        assert_eq!(ds.schema, Schema::V2);
        assert_eq!(ds.attack_types, vec!["syn_flood"]);
        assert_eq!(ds.rows[0][22], 0.0);
        let v3 = format!("{},label", FEATURE_NAMES[..23].join(","));
        let ds = parse(&format!("{v3}\n{}\n", vec!["2"; 23].join(",") + ",0")).unwrap();
        assert_eq!(ds.schema, Schema::V3);
        assert_eq!(ds.rows[0][22], 2.0);
        assert_eq!(ds.attack_types, vec![""]);
        // So do v3 with `attack_type` and v4 without it (25 columns).
        let v3 = format!("{},label,attack_type", FEATURE_NAMES[..23].join(","));
        let ds = parse(&format!(
            "{v3}\n{}\n",
            vec!["2"; 23].join(",") + ",1,ack_flood"
        ))
        .unwrap();
        assert_eq!(ds.schema, Schema::V3);
        assert_eq!(ds.rows[0][23], 0.0);
        assert_eq!(ds.attack_types, vec!["ack_flood"]);
        let v4 = format!("{},label", FEATURE_NAMES[..24].join(","));
        let ds = parse(&format!("{v4}\n{}\n", vec!["5"; 24].join(",") + ",0")).unwrap();
        assert_eq!(ds.schema, Schema::V4);
        assert_eq!(ds.rows[0][23], 5.0);
        assert_eq!(ds.rows[0][24], 0.0);
        // And v4 with `attack_type` and v5 without it (26 columns).
        let v4 = format!("{},label,attack_type", FEATURE_NAMES[..24].join(","));
        let ds = parse(&format!(
            "{v4}\n{}\n",
            vec!["5"; 24].join(",") + ",1,ack_flood"
        ))
        .unwrap();
        assert_eq!(ds.schema, Schema::V4);
        assert_eq!(ds.attack_types, vec!["ack_flood"]);
        let v5 = format!("{},label", FEATURE_NAMES[..25].join(","));
        let ds = parse(&format!("{v5}\n{}\n", vec!["6"; 25].join(",") + ",0")).unwrap();
        assert_eq!(ds.schema, Schema::V5);
        assert_eq!(ds.rows[0][24], 6.0);
        assert_eq!(ds.rows[0][25], 0.0);
        // And v5 with `attack_type` and v6 without it (27 columns).
        let v5 = format!("{},label,attack_type", FEATURE_NAMES[..25].join(","));
        let ds = parse(&format!(
            "{v5}\n{}\n",
            vec!["6"; 25].join(",") + ",1,http_auth_guess"
        ))
        .unwrap();
        assert_eq!(ds.schema, Schema::V5);
        assert_eq!(ds.attack_types, vec!["http_auth_guess"]);
        let v6 = format!("{},label", FEATURE_NAMES[..26].join(","));
        let ds = parse(&format!("{v6}\n{}\n", vec!["7"; 26].join(",") + ",0")).unwrap();
        assert_eq!(ds.schema, Schema::V6);
        assert_eq!(ds.rows[0][25], 7.0);
        assert_eq!(ds.rows[0][26], 0.0);
        let v7 = format!("{},label", FEATURE_NAMES.join(","));
        let ds = parse(&format!("{v7}\n{}\n", vec!["8"; 29].join(",") + ",0")).unwrap();
        assert_eq!(ds.schema, Schema::V7);
        assert_eq!(ds.rows[0][28], 8.0);
        // Neither: the newest schema's first wrong column is named.
        let mut names: Vec<&str> = FEATURE_NAMES.to_vec();
        names[22] = "sig_hits";
        let err = parse(&format!("{},label\n", names.join(","))).unwrap_err();
        assert!(err.to_string().contains("\"signature_hits\""), "{err}");
    }

    #[test]
    fn a_schema_v1_file_still_reads_with_the_v2_features_zero() {
        let h = format!("{},label,attack_type", FEATURE_NAMES[..15].join(","));
        let r = row(&vec!["3"; 15].join(","), "1,syn_flood");
        let ds = parse(&format!("{h}\n{r}\n")).unwrap();
        assert_eq!(ds.schema, Schema::V1);
        assert_eq!(ds.rows[0][..15], [3.0; 15]);
        assert_eq!(ds.rows[0][15..], [0.0; 14]);
        assert_eq!(ds.labels, vec![1]);
        // A v1 header with v2's column count is refused at its first
        // wrong name.
        let mut names: Vec<&str> = FEATURE_NAMES[..15].to_vec();
        names.extend(["a", "b", "c", "d", "e", "f", "g"]);
        let err = parse(&format!("{},label\n", names.join(","))).unwrap_err();
        assert!(err.to_string().contains("\"new_conn_rate\""), "{err}");
    }
}
