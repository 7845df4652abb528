/// Shannon entropy of `bytes` in bits per byte (0 for an empty slice, at
/// most 8). No allocation: the byte histogram lives on the stack.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    let mut h = 0.0;
    for &c in counts.iter().filter(|&&c| c > 0) {
        let p = c as f64 / n;
        h -= p * p.log2();
    }
    // -0.0 for a single distinct byte value.
    h.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_known_distributions() {
        assert_eq!(shannon_entropy(&[]), 0.0);
        assert_eq!(shannon_entropy(&[7; 64]), 0.0);
        assert!((shannon_entropy(&[0, 1, 0, 1]) - 1.0).abs() < 1e-12);
        let all: Vec<u8> = (0..=255).collect();
        assert!((shannon_entropy(&all) - 8.0).abs() < 1e-12);
        let four: Vec<u8> = (0..64).map(|i| (i % 4) as u8).collect();
        assert!((shannon_entropy(&four) - 2.0).abs() < 1e-12);
    }
}
