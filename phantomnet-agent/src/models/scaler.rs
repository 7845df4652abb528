use serde::{Deserialize, Serialize};

use crate::features::FEATURE_COUNT;

/// Standardises each feature to zero mean and unit variance, with the mean
/// and (population) standard deviation of the training rows. A constant
/// feature keeps a scale of 1, as scikit-learn's StandardScaler does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardScaler {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl StandardScaler {
    /// Fits on the first `width` features of `rows` (a model's schema's
    /// feature count, at most [`FEATURE_COUNT`]); an empty input gives the
    /// identity scaler. The features past `width` are never scaled.
    pub fn fit(rows: &[[f64; FEATURE_COUNT]], width: usize) -> Self {
        let width = width.min(FEATURE_COUNT);
        let n = rows.len() as f64;
        let mut mean = vec![0.0; width];
        let mut scale = vec![1.0; width];
        if rows.is_empty() {
            return StandardScaler { mean, scale };
        }
        for r in rows {
            for (m, v) in mean.iter_mut().zip(&r[..width]) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = [0.0; FEATURE_COUNT];
        for r in rows {
            for j in 0..width {
                let d = r[j] - mean[j];
                var[j] += d * d;
            }
        }
        for j in 0..width {
            let sd = (var[j] / n).sqrt();
            scale[j] = if sd > f64::EPSILON * mean[j].abs().max(1.0) {
                sd
            } else {
                1.0
            };
        }
        StandardScaler { mean, scale }
    }

    /// Number of features scaled (the model's schema's count).
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    /// Scales one row in place: its first [`Self::width`] features.
    pub fn transform(&self, row: &mut [f64; FEATURE_COUNT]) {
        for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
            *v = (*v - m) / s;
        }
    }

    /// A scaled copy of `row`.
    pub fn transformed(&self, row: &[f64; FEATURE_COUNT]) -> [f64; FEATURE_COUNT] {
        let mut out = *row;
        self.transform(&mut out);
        out
    }

    /// Checks that it scales `width` features (its model's schema's
    /// count), that every value is finite and every scale positive.
    pub fn validate(&self, width: usize) -> Result<(), String> {
        if self.mean.len() != width || self.scale.len() != width {
            return Err(format!(
                "scaler has {} means and {} scales, expected {width}",
                self.mean.len(),
                self.scale.len()
            ));
        }
        if let Some(j) = (0..width).find(|&j| {
            !self.mean[j].is_finite() || !self.scale[j].is_finite() || self.scale[j] <= 0.0
        }) {
            return Err(format!(
                "scaler feature {j}: mean {} scale {} (must be finite, scale > 0)",
                self.mean[j], self.scale[j]
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_data_has_zero_mean_and_unit_variance() {
        let rows: Vec<[f64; FEATURE_COUNT]> = (0..100)
            .map(|i| {
                let mut r = [5.0; FEATURE_COUNT];
                r[0] = i as f64;
                r[1] = (i * i) as f64;
                r
            })
            .collect();
        let s = StandardScaler::fit(&rows, FEATURE_COUNT);
        s.validate(FEATURE_COUNT).unwrap();
        assert!(s.validate(15).is_err());
        let t: Vec<_> = rows.iter().map(|r| s.transformed(r)).collect();
        for j in [0, 1] {
            let m: f64 = t.iter().map(|r| r[j]).sum::<f64>() / 100.0;
            let v: f64 = t.iter().map(|r| (r[j] - m).powi(2)).sum::<f64>() / 100.0;
            assert!(m.abs() < 1e-9 && (v - 1.0).abs() < 1e-9, "{j}: {m} {v}");
        }
        // A constant feature keeps scale 1 and becomes 0.
        assert_eq!(s.scale[2], 1.0);
        assert_eq!(t[3][2], 0.0);
        let mut bad = s.clone();
        bad.scale[4] = 0.0;
        assert!(bad.validate(FEATURE_COUNT).is_err());
        // A narrower scaler leaves the features past its width alone.
        let v1 = StandardScaler::fit(&rows, 15);
        v1.validate(15).unwrap();
        assert_eq!(v1.transformed(&rows[7])[15..], rows[7][15..]);
    }
}
