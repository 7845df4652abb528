//! Stratified train/test split and stratified k-fold, seeded.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Indices of each class, each list shuffled with `seed`.
fn shuffled_by_class(labels: &[u32], seed: u64) -> [Vec<usize>; 2] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut by = [Vec::new(), Vec::new()];
    for (i, &l) in labels.iter().enumerate() {
        by[(l.min(1)) as usize].push(i);
    }
    for v in &mut by {
        v.shuffle(&mut rng);
    }
    by
}

/// `(train, test)` indices (each sorted): `test_fraction` of each class,
/// rounded, goes to the test set.
pub fn stratified_split(labels: &[u32], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in shuffled_by_class(labels, seed) {
        let n_test = ((class.len() as f64) * test_fraction).round() as usize;
        test.extend_from_slice(&class[..n_test.min(class.len())]);
        train.extend_from_slice(&class[n_test.min(class.len())..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// `k` folds of `(train, test)` positions into `labels`; each class is dealt
/// round-robin over the folds, so every fold has its share of each class.
pub fn stratified_kfold(labels: &[u32], k: usize, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut fold_of = vec![0usize; labels.len()];
    for class in shuffled_by_class(labels, seed) {
        for (pos, &i) in class.iter().enumerate() {
            fold_of[i] = pos % k;
        }
    }
    (0..k)
        .map(|f| {
            let (test, train): (Vec<usize>, Vec<usize>) =
                (0..labels.len()).partition(|&i| fold_of[i] == f);
            (train, test)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<u32> {
        (0..1000).map(|i| u32::from(i % 10 < 3)).collect()
    }

    #[test]
    fn split_keeps_class_shares_and_is_seeded() {
        let y = labels();
        let (train, test) = stratified_split(&y, 0.2, 1);
        assert_eq!(test.len(), 200);
        assert_eq!(train.len(), 800);
        assert_eq!(test.iter().filter(|&&i| y[i] == 1).count(), 60);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(stratified_split(&y, 0.2, 1), (train.clone(), test.clone()));
        assert_ne!(stratified_split(&y, 0.2, 2).1, test);
    }

    #[test]
    fn kfold_partitions_and_stratifies() {
        let y = labels();
        let folds = stratified_kfold(&y, 5, 3);
        assert_eq!(folds.len(), 5);
        let mut seen = vec![0; y.len()];
        for (train, test) in &folds {
            assert_eq!(train.len() + test.len(), y.len());
            assert_eq!(test.len(), 200);
            assert_eq!(test.iter().filter(|&&i| y[i] == 1).count(), 60);
            for &i in test {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1));
    }
}
