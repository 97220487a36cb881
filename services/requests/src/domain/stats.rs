//! Shaping of dashboard counts and coordinator statistics, free of I/O: the store aggregates in SQL, this orders
//! and completes the results.

use super::RequestStatus;

/// Counts by status in lifecycle order, every status present (zero when absent). Unknown statuses are dropped.
pub fn status_counts(rows: &[(String, i64)]) -> Vec<(RequestStatus, u64)> {
    RequestStatus::ALL
        .into_iter()
        .map(|status| {
            let n = rows.iter().filter(|(s, _)| s == status.as_str()).map(|(_, n)| *n).sum::<i64>();
            (status, u64::try_from(n).unwrap_or(0))
        })
        .collect()
}

/// Counts by key, largest first, then by key (stable output for equal counts).
pub fn ranked(mut rows: Vec<(String, i64)>) -> Vec<(String, u64)> {
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.into_iter().map(|(k, n)| (k, u64::try_from(n).unwrap_or(0))).collect()
}

/// Satisfaction from the number of each rating: (count, mean, [count of 1, ..., count of 5]).
pub fn satisfaction(rows: &[(i16, i64)]) -> (u64, f64, [u64; 5]) {
    let mut distribution = [0u64; 5];
    for (rating, n) in rows {
        if let Some(slot) =
            usize::try_from(*rating).ok().and_then(|r| r.checked_sub(1)).and_then(|i| distribution.get_mut(i))
        {
            *slot += u64::try_from(*n).unwrap_or(0);
        }
    }
    let count: u64 = distribution.iter().sum();
    let sum: u64 = distribution.iter().zip(1u64..).map(|(n, r)| n * r).sum();
    let mean = if count == 0 { 0.0 } else { sum as f64 / count as f64 };
    (count, mean, distribution)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_counted_in_lifecycle_order() {
        let counts = status_counts(&[("completed".into(), 2), ("submitted".into(), 3), ("bogus".into(), 9)]);
        assert_eq!(counts.len(), RequestStatus::ALL.len());
        assert_eq!(counts[0], (RequestStatus::Submitted, 3));
        assert!(counts.contains(&(RequestStatus::Completed, 2)));
        assert_eq!(counts.iter().map(|c| c.1).sum::<u64>(), 5);
    }

    #[test]
    fn rankings_put_the_largest_first() {
        let r = ranked(vec![("b".into(), 1), ("a".into(), 1), ("c".into(), 5)]);
        assert_eq!(r, vec![("c".into(), 5), ("a".into(), 1), ("b".into(), 1)]);
    }

    #[test]
    fn satisfaction_mean_and_distribution() {
        assert_eq!(satisfaction(&[]), (0, 0.0, [0; 5]));
        let (count, mean, dist) = satisfaction(&[(5, 3), (2, 1), (9, 4)]);
        assert_eq!((count, dist), (4, [0, 1, 0, 0, 3]));
        assert!((mean - 17.0 / 4.0).abs() < 1e-9);
    }
}
