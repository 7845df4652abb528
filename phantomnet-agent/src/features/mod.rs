//! Feature schemas: the numbers every model sees, in a fixed order.
//!
//! Schema v6 (26 features) is what this build computes; schema v5 is its
//! first 25, schema v4 its first 24, schema v3 its first 23, schema v2 its
//! first 22 and schema v1 its first 15, so an older model scores the prefix
//! of a v6 vector.
//! [`extract`] turns one sample plus its source's window statistics
//! ([`crate::flow::WindowStats`]) into a [`FeatureVector`]. Each feature is
//! documented in `docs/FEATURES.md`.

mod entropy;
mod extract;

pub use entropy::shannon_entropy;
pub use extract::{dst_port_class, extract, protocol_encoding};

/// The schema this build computes (and `dataset` writes): the newest.
pub const SCHEMA_VERSION: u32 = 7;
/// Number of features this build computes (schema v7): the width of a
/// [`FeatureVector`] and of a training row.
pub const FEATURE_COUNT: usize = 29;
/// Number of features in schema v1 (the first 15 of v3).
pub const V1_FEATURE_COUNT: usize = 15;
/// Number of features in schema v2 (the first 22 of v4).
pub const V2_FEATURE_COUNT: usize = 22;
/// Number of features in schema v3 (the first 23 of v5).
pub const V3_FEATURE_COUNT: usize = 23;
/// Number of features in schema v4 (the first 24 of v6).
pub const V4_FEATURE_COUNT: usize = 24;
/// Number of features in schema v5 (the first 25 of v7).
pub const V5_FEATURE_COUNT: usize = 25;
/// Number of features in schema v6 (the first 26 of v7).
pub const V6_FEATURE_COUNT: usize = 26;
/// Feature names in schema order; the first [`V1_FEATURE_COUNT`] are
/// schema v1. Also the CSV header.
pub const FEATURE_NAMES: [&str; FEATURE_COUNT] = [
    "packet_length",
    "protocol_encoding",
    "dst_port_class",
    "src_port_ephemeral",
    "event_rate_1m",
    "burst_rate_10s",
    "inter_arrival_mean",
    "inter_arrival_std",
    "packet_size_variance",
    "payload_entropy",
    "unique_dst_ips",
    "unique_dst_ports",
    "payload_length",
    "syn_ratio",
    "ttl",
    // Schema v2: connection behaviour.
    "new_conn_rate",
    "packets_per_conn",
    "bytes_per_conn",
    "payload_share",
    "ack_only_share",
    "rst_share",
    "fin_share",
    // Schema v3: payload evidence.
    "signature_hits",
    // Schema v4: the protected side's answer.
    "server_refusals",
    // Schema v5: the protected side's conversation.
    "server_answers",
    // Schema v6: what the protected side answered.
    "server_errors",
    // Schema v7: every sample, weighted (Horvitz–Thompson).
    "est_packet_rate",
    "est_conn_rate",
    "est_packets_per_conn",
];

/// A feature schema a model can be trained on and scored with. Every
/// schema is a prefix of [`FEATURE_NAMES`]: a model of schema `s` reads
/// features `0..s.count()` of a vector and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Schema {
    /// The original 15 features: one packet plus its source's windows.
    V1,
    /// v1 plus 7 connection-behaviour features.
    V2,
    /// v2 plus the source's payload-signature matches.
    V3,
    /// v3 plus the protected side's refusals of the source.
    V4,
    /// v4 plus the protected side's answers to the source.
    V5,
    /// v5 plus the protected side's HTTP error responses to the source.
    V6,
    /// v6 plus the source's packets and connections with every sample
    /// weighted by its sampling probability's inverse.
    V7,
}

impl Schema {
    /// Every schema this build can score, oldest first.
    pub const ALL: [Schema; 7] = [
        Schema::V1,
        Schema::V2,
        Schema::V3,
        Schema::V4,
        Schema::V5,
        Schema::V6,
        Schema::V7,
    ];
    /// The schema this build computes.
    pub const CURRENT: Schema = Schema::V7;

    pub fn version(self) -> u32 {
        match self {
            Schema::V1 => 1,
            Schema::V2 => 2,
            Schema::V3 => 3,
            Schema::V4 => 4,
            Schema::V5 => 5,
            Schema::V6 => 6,
            Schema::V7 => 7,
        }
    }

    pub fn from_version(version: u32) -> Option<Schema> {
        Schema::ALL.into_iter().find(|s| s.version() == version)
    }

    /// Number of features.
    pub fn count(self) -> usize {
        match self {
            Schema::V1 => V1_FEATURE_COUNT,
            Schema::V2 => V2_FEATURE_COUNT,
            Schema::V3 => V3_FEATURE_COUNT,
            Schema::V4 => V4_FEATURE_COUNT,
            Schema::V5 => V5_FEATURE_COUNT,
            Schema::V6 => V6_FEATURE_COUNT,
            Schema::V7 => FEATURE_COUNT,
        }
    }

    /// Feature names in order.
    pub fn names(self) -> &'static [&'static str] {
        &FEATURE_NAMES[..self.count()]
    }

    /// Checks a recorded version and feature list against this schema.
    fn check(self, names: &[String]) -> Result<(), SchemaMismatch> {
        let expected = self.names();
        let version = self.version();
        if let Some(i) = (0..names.len().min(expected.len())).find(|&i| names[i] != expected[i]) {
            return Err(SchemaMismatch::Name {
                version,
                index: i,
                found: names[i].clone(),
                expected: expected[i],
            });
        }
        if names.len() != expected.len() {
            return Err(SchemaMismatch::Count {
                version,
                found: names.len(),
                expected: expected.len(),
                first_difference: match names.get(expected.len()) {
                    Some(extra) => format!("unexpected feature {:?}", extra),
                    None => format!("missing feature {:?}", expected[names.len()]),
                },
            });
        }
        Ok(())
    }
}

impl Default for Schema {
    fn default() -> Schema {
        Schema::CURRENT
    }
}

impl std::fmt::Display for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.version())
    }
}

/// Index of each feature in a [`FeatureVector`].
pub mod index {
    pub const PACKET_LENGTH: usize = 0;
    pub const PROTOCOL_ENCODING: usize = 1;
    pub const DST_PORT_CLASS: usize = 2;
    pub const SRC_PORT_EPHEMERAL: usize = 3;
    pub const EVENT_RATE_1M: usize = 4;
    pub const BURST_RATE_10S: usize = 5;
    pub const INTER_ARRIVAL_MEAN: usize = 6;
    pub const INTER_ARRIVAL_STD: usize = 7;
    pub const PACKET_SIZE_VARIANCE: usize = 8;
    pub const PAYLOAD_ENTROPY: usize = 9;
    pub const UNIQUE_DST_IPS: usize = 10;
    pub const UNIQUE_DST_PORTS: usize = 11;
    pub const PAYLOAD_LENGTH: usize = 12;
    pub const SYN_RATIO: usize = 13;
    pub const TTL: usize = 14;
    // Schema v2.
    pub const NEW_CONN_RATE: usize = 15;
    pub const PACKETS_PER_CONN: usize = 16;
    pub const BYTES_PER_CONN: usize = 17;
    pub const PAYLOAD_SHARE: usize = 18;
    pub const ACK_ONLY_SHARE: usize = 19;
    pub const RST_SHARE: usize = 20;
    pub const FIN_SHARE: usize = 21;
    // Schema v3.
    pub const SIGNATURE_HITS: usize = 22;
    // Schema v4.
    pub const SERVER_REFUSALS: usize = 23;
    // Schema v5.
    pub const SERVER_ANSWERS: usize = 24;
    // Schema v6.
    pub const SERVER_ERRORS: usize = 25;
    // Schema v7.
    pub const EST_PACKET_RATE: usize = 26;
    pub const EST_CONN_RATE: usize = 27;
    pub const EST_PACKETS_PER_CONN: usize = 28;
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    #[error("feature {name} (index {index}) is not finite: {value}")]
    NonFinite {
        index: usize,
        name: &'static str,
        value: f64,
    },
    #[error(
        "expected {FEATURE_COUNT} features (schema v7), {V6_FEATURE_COUNT} (schema v6), {V5_FEATURE_COUNT} (schema v5), {V4_FEATURE_COUNT} (schema v4), {V3_FEATURE_COUNT} (schema v3), {V2_FEATURE_COUNT} (schema v2) or {V1_FEATURE_COUNT} (schema v1), got {0}"
    )]
    Count(usize),
}

/// One row of schema-v7 features (a schema-v1 model reads its first 15, a
/// schema-v2 model its first 22, v3 its first 23, v4 its first 24, v5
/// its first 25 and v6 its first 26).
/// Construct it through [`FeatureVector::new`]
/// (or [`extract`]), which rejects non-finite values, so every vector a model
/// sees is finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureVector([f64; FEATURE_COUNT]);

impl FeatureVector {
    /// Checks every value is finite.
    pub fn new(values: [f64; FEATURE_COUNT]) -> Result<Self, FeatureError> {
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(FeatureError::NonFinite {
                index,
                name: FEATURE_NAMES[index],
                value: values[index],
            });
        }
        Ok(FeatureVector(values))
    }

    /// From a slice of one schema's width of finite values: 24 (v4), 23
    /// (v3), 22 (v2) or 15 (v1); the features beyond an older schema stay 0, which
    /// a model of that schema never reads.
    pub fn from_slice(values: &[f64]) -> Result<Self, FeatureError> {
        if !Schema::ALL.iter().any(|s| s.count() == values.len()) {
            return Err(FeatureError::Count(values.len()));
        }
        let mut arr = [0.0; FEATURE_COUNT];
        arr[..values.len()].copy_from_slice(values);
        Self::new(arr)
    }

    pub fn as_array(&self) -> &[f64; FEATURE_COUNT] {
        &self.0
    }

    pub fn get(&self, index: usize) -> f64 {
        self.0[index]
    }

    /// `(name, value)` pairs in schema order.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        FEATURE_NAMES.iter().copied().zip(self.0.iter().copied())
    }
}

/// Checks recorded schema metadata (a model artifact's) against the
/// schemas this build computes, and returns the schema it names. The
/// version picks the schema; the names must then be exactly its names, in
/// order, and the error names the first difference.
pub fn check_schema(version: u32, names: &[String]) -> Result<Schema, SchemaMismatch> {
    let schema = Schema::from_version(version).ok_or(SchemaMismatch::Version {
        found: version,
        newest: SCHEMA_VERSION,
    })?;
    schema.check(names)?;
    Ok(schema)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaMismatch {
    #[error("feature schema version {found}, this build computes versions 1 to {newest}")]
    Version { found: u32, newest: u32 },
    #[error("{found} feature names recorded, schema v{version} has {expected}: {first_difference}")]
    Count {
        version: u32,
        found: usize,
        expected: usize,
        /// `unexpected feature "x"` or `missing feature "y"`.
        first_difference: String,
    },
    #[error("feature {index} is named {found:?}, schema v{version} expects {expected:?}")]
    Name {
        version: u32,
        index: usize,
        found: String,
        expected: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_are_rejected_with_their_name() {
        let mut v = [1.0; FEATURE_COUNT];
        v[index::INTER_ARRIVAL_STD] = f64::NAN;
        let err = FeatureVector::new(v).unwrap_err();
        assert!(matches!(err, FeatureError::NonFinite { index: 7, .. }));
        assert!(err.to_string().contains("inter_arrival_std"));
        v[index::INTER_ARRIVAL_STD] = 0.0;
        v[index::TTL] = f64::INFINITY;
        assert!(FeatureVector::new(v).is_err());
        v[index::TTL] = 64.0;
        assert_eq!(FeatureVector::new(v).unwrap().get(index::TTL), 64.0);
        assert_eq!(
            FeatureVector::from_slice(&[0.0; 14]).unwrap_err(),
            FeatureError::Count(14)
        );
        let v1 = FeatureVector::from_slice(&[2.0; V1_FEATURE_COUNT]).unwrap();
        assert_eq!(v1.get(index::TTL), 2.0);
        assert_eq!(v1.get(index::FIN_SHARE), 0.0);
    }

    #[test]
    fn schema_check_names_the_mismatch() {
        let names =
            |s: Schema| -> Vec<String> { s.names().iter().map(|n| n.to_string()).collect() };
        let (v1, v2, v3, v4, v5, v6, v7) = (
            names(Schema::V1),
            names(Schema::V2),
            names(Schema::V3),
            names(Schema::V4),
            names(Schema::V5),
            names(Schema::V6),
            names(Schema::V7),
        );
        assert_eq!(check_schema(1, &v1), Ok(Schema::V1));
        assert_eq!(check_schema(2, &v2), Ok(Schema::V2));
        assert_eq!(check_schema(3, &v3), Ok(Schema::V3));
        assert_eq!(check_schema(4, &v4), Ok(Schema::V4));
        assert_eq!(check_schema(5, &v5), Ok(Schema::V5));
        assert_eq!(check_schema(6, &v6), Ok(Schema::V6));
        assert_eq!(check_schema(7, &v7), Ok(Schema::V7));
        assert_eq!(&v2[..V1_FEATURE_COUNT], &v1[..], "v1 is v2's prefix");
        assert_eq!(&v3[..V2_FEATURE_COUNT], &v2[..], "v2 is v3's prefix");
        assert_eq!(&v4[..V3_FEATURE_COUNT], &v3[..], "v3 is v4's prefix");
        assert_eq!(&v5[..V4_FEATURE_COUNT], &v4[..], "v4 is v5's prefix");
        assert_eq!(&v6[..V5_FEATURE_COUNT], &v5[..], "v5 is v6's prefix");
        assert_eq!(&v7[..V6_FEATURE_COUNT], &v6[..], "v6 is v7's prefix");
        assert!(matches!(
            check_schema(8, &v7),
            Err(SchemaMismatch::Version { found: 8, .. })
        ));
        let err = check_schema(7, &v6).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing feature \"est_packet_rate\""),
            "{err}"
        );
        let err = check_schema(6, &v5).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing feature \"server_errors\""),
            "{err}"
        );
        let err = check_schema(5, &v4).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing feature \"server_answers\""),
            "{err}"
        );
        let err = check_schema(4, &v3).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing feature \"server_refusals\""),
            "{err}"
        );
        let err = check_schema(3, &v2).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing feature \"signature_hits\""),
            "{err}"
        );
        // The version decides: v1's names under version 2 and v2's under 1
        // are both refused, with the first missing or extra name.
        let err = check_schema(2, &v1).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing feature \"new_conn_rate\""),
            "{err}"
        );
        let err = check_schema(1, &v2).unwrap_err();
        assert!(
            err.to_string()
                .contains("unexpected feature \"new_conn_rate\""),
            "{err}"
        );
        let mut swapped = v1.clone();
        swapped.swap(4, 5);
        let err = check_schema(1, &swapped).unwrap_err();
        assert!(err.to_string().contains("burst_rate_10s"), "{err}");
        assert!(matches!(
            check_schema(1, &v1[..14]),
            Err(SchemaMismatch::Count { found: 14, .. })
        ));
    }
}
