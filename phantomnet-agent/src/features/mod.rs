//! Feature schema v1: the 15 numbers every model sees, in a fixed order.
//!
//! [`extract`] turns one sample plus its source's window statistics
//! ([`crate::flow::WindowStats`]) into a [`FeatureVector`]. Each feature is
//! documented in `docs/FEATURES.md`.

mod entropy;
mod extract;

pub use entropy::shannon_entropy;
pub use extract::{dst_port_class, extract, protocol_encoding};

/// The schema version every model artifact records.
pub const SCHEMA_VERSION: u32 = 1;
/// Number of features in schema v1.
pub const FEATURE_COUNT: usize = 15;
/// Feature names in schema order; also the CSV header.
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
];

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
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureError {
    #[error("feature {name} (index {index}) is not finite: {value}")]
    NonFinite {
        index: usize,
        name: &'static str,
        value: f64,
    },
    #[error("expected {FEATURE_COUNT} features, got {0}")]
    Count(usize),
}

/// One row of schema-v1 features. Construct it through [`FeatureVector::new`]
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

    /// From a slice of exactly [`FEATURE_COUNT`] finite values.
    pub fn from_slice(values: &[f64]) -> Result<Self, FeatureError> {
        let arr: [f64; FEATURE_COUNT] = values
            .try_into()
            .map_err(|_| FeatureError::Count(values.len()))?;
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

/// Checks recorded schema metadata against this build's schema.
pub fn check_schema(version: u32, names: &[String]) -> Result<(), SchemaMismatch> {
    if version != SCHEMA_VERSION {
        return Err(SchemaMismatch::Version {
            found: version,
            expected: SCHEMA_VERSION,
        });
    }
    if names.len() != FEATURE_COUNT {
        return Err(SchemaMismatch::Count {
            found: names.len(),
            expected: FEATURE_COUNT,
        });
    }
    if let Some(i) = (0..FEATURE_COUNT).find(|&i| names[i] != FEATURE_NAMES[i]) {
        return Err(SchemaMismatch::Name {
            index: i,
            found: names[i].clone(),
            expected: FEATURE_NAMES[i],
        });
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaMismatch {
    #[error("feature schema version {found}, this build uses version {expected}")]
    Version { found: u32, expected: u32 },
    #[error("{found} feature names recorded, schema v1 has {expected}")]
    Count { found: usize, expected: usize },
    #[error("feature {index} is named {found:?}, schema v1 expects {expected:?}")]
    Name {
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
    }

    #[test]
    fn schema_check_names_the_mismatch() {
        let names: Vec<String> = FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
        assert!(check_schema(1, &names).is_ok());
        assert!(matches!(
            check_schema(2, &names),
            Err(SchemaMismatch::Version { found: 2, .. })
        ));
        let mut swapped = names.clone();
        swapped.swap(4, 5);
        let err = check_schema(1, &swapped).unwrap_err();
        assert!(err.to_string().contains("burst_rate_10s"), "{err}");
        assert!(matches!(
            check_schema(1, &names[..14]),
            Err(SchemaMismatch::Count { found: 14, .. })
        ));
    }
}
