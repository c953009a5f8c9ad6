//! Statistics for comparing classifiers over many streams (Demšar 2006,
//! "Statistical Comparisons of Classifiers over Multiple Data Sets", JMLR 7):
//! average ranks, the Friedman test with the Iman-Davenport correction, and
//! the Nemenyi critical difference. The special functions (log-gamma, the
//! regularized incomplete gamma and beta functions, the normal CDF and the
//! studentized range of infinitely many degrees of freedom) are implemented
//! here from their textbook definitions, so that the suite needs no
//! statistics crate.

/// Ranks of one row of scores, 1 = best, ties sharing the average of the
/// ranks they span. NaN scores rank last (tied among themselves).
pub fn rank_row(scores: &[f64], higher_is_better: bool) -> Vec<f64> {
    let key = |v: f64| {
        if v.is_nan() {
            f64::INFINITY
        } else if higher_is_better {
            -v
        } else {
            v
        }
    };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| key(scores[a]).total_cmp(&key(scores[b])));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && key(scores[order[j]]) == key(scores[order[i]]) {
            j += 1;
        }
        // Positions i..j (0-based) hold ranks i+1..=j; each gets their mean.
        let mean = (i + 1 + j) as f64 / 2.0;
        for &o in &order[i..j] {
            ranks[o] = mean;
        }
        i = j;
    }
    ranks
}

/// Average rank of each column over the rows (`rows[stream][model]`).
pub fn average_ranks(rows: &[Vec<f64>], higher_is_better: bool) -> Vec<f64> {
    let k = rows.first().map_or(0, Vec::len);
    let mut sum = vec![0.0; k];
    for row in rows {
        for (s, r) in sum.iter_mut().zip(rank_row(row, higher_is_better)) {
            *s += r;
        }
    }
    let n = rows.len().max(1) as f64;
    sum.iter().map(|s| s / n).collect()
}

/// The Friedman test on `k` average ranks over `n` data sets, with the
/// Iman-Davenport correction (Demšar 2006, section 3.2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Friedman {
    pub n: usize,
    pub k: usize,
    /// Friedman's chi-square with `k - 1` degrees of freedom.
    pub chi2: f64,
    pub chi2_p: f64,
    /// Iman-Davenport F with `k - 1` and `(k - 1)(n - 1)` degrees of freedom.
    pub f: f64,
    pub df1: f64,
    pub df2: f64,
    pub f_p: f64,
}

/// Friedman's test from average ranks. Needs `k >= 2` and `n >= 2`.
pub fn friedman(avg_ranks: &[f64], n: usize) -> Option<Friedman> {
    let k = avg_ranks.len();
    if k < 2 || n < 2 {
        return None;
    }
    let (kf, nf) = (k as f64, n as f64);
    let sum_sq: f64 = avg_ranks.iter().map(|r| r * r).sum();
    let chi2 = (12.0 * nf / (kf * (kf + 1.0)) * (sum_sq - kf * (kf + 1.0).powi(2) / 4.0)).max(0.0);
    let df1 = kf - 1.0;
    let df2 = (kf - 1.0) * (nf - 1.0);
    // chi2 reaches n(k-1) when every data set ranks the models alike; F is
    // then infinite and the null hypothesis is rejected at any level.
    let denom = nf * (kf - 1.0) - chi2;
    let (f, f_p) = if denom <= 1e-12 {
        (f64::INFINITY, 0.0)
    } else {
        let f = (nf - 1.0) * chi2 / denom;
        (f, f_sf(f, df1, df2))
    };
    Some(Friedman {
        n,
        k,
        chi2,
        chi2_p: chi2_sf(chi2, df1),
        f,
        df1,
        df2,
        f_p,
    })
}

/// The Nemenyi critical difference: two models whose average ranks over `n`
/// data sets differ by more than this differ significantly at `alpha`.
pub fn nemenyi_cd(k: usize, n: usize, alpha: f64) -> f64 {
    let (kf, nf) = (k as f64, n.max(1) as f64);
    nemenyi_q(k, alpha) * (kf * (kf + 1.0) / (6.0 * nf)).sqrt()
}

/// `q_alpha` of the Nemenyi test: the `1 - alpha` quantile of the
/// studentized range of `k` normal variables (infinite degrees of freedom)
/// divided by `sqrt(2)` (Demšar 2006, Table 5a, which lists k = 2..10).
pub fn nemenyi_q(k: usize, alpha: f64) -> f64 {
    if k < 2 {
        return 0.0;
    }
    let target = 1.0 - alpha;
    let (mut lo, mut hi) = (0.0, 20.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if studentized_range_cdf(mid, k) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi) / std::f64::consts::SQRT_2
}

/// P(range of `k` iid standard normals <= q)
/// = k ∫ φ(z) [Φ(z) − Φ(z − q)]^(k−1) dz, by Simpson's rule.
pub fn studentized_range_cdf(q: f64, k: usize) -> f64 {
    if q <= 0.0 || k < 2 {
        return 0.0;
    }
    let (a, b) = (-9.0, 9.0 + q);
    let steps = 4000usize; // even
    let h = (b - a) / steps as f64;
    let f = |z: f64| {
        let d = (normal_cdf(z) - normal_cdf(z - q)).max(0.0);
        normal_pdf(z) * d.powi(k as i32 - 1)
    };
    let mut sum = f(a) + f(b);
    for i in 1..steps {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        sum += w * f(a + i as f64 * h);
    }
    (k as f64 * sum * h / 3.0).clamp(0.0, 1.0)
}

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal CDF, through erf(x) = P(1/2, x²).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let erf = gamma_p(0.5, x * x);
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Upper tail of the chi-square distribution with `df` degrees of freedom.
pub fn chi2_sf(x: f64, df: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    1.0 - gamma_p(df / 2.0, x / 2.0)
}

/// Upper tail P(F > f) of the F distribution with (`d1`, `d2`) degrees of
/// freedom: I_{d2/(d2 + d1 f)}(d2/2, d1/2).
pub fn f_sf(f: f64, d1: f64, d2: f64) -> f64 {
    if f <= 0.0 {
        return 1.0;
    }
    if !f.is_finite() {
        return 0.0;
    }
    beta_inc(d2 / 2.0, d1 / 2.0, d2 / (d2 + d1 * f))
}

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized lower incomplete gamma P(a, x): the series for x < a + 1,
/// else one minus the continued fraction of Q.
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let log_pre = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (sum * log_pre.exp()).clamp(0.0, 1.0)
    } else {
        // Q(a, x) by Lentz's method on the continued fraction
        // 1/(x+1−a− 1(1−a)/(x+3−a− 2(2−a)/(x+5−a− ...))).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (1.0 - log_pre.exp() * h).clamp(0.0, 1.0)
    }
}

/// Regularized incomplete beta I_x(a, b), by the continued fraction of
/// its standard expansion, using I_x(a, b) = 1 − I_{1−x}(b, a) where that
/// converges faster.
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let log_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        (log_front.exp() * beta_cf(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - log_front.exp() * beta_cf(b, a, 1.0 - x) / b).clamp(0.0, 1.0)
    }
}

/// The continued fraction of I_x(a, b) by Lentz's method: terms
/// d_{2m+1} = −(a+m)(a+b+m)x / ((a+2m)(a+2m+1)),
/// d_{2m} = m(b−m)x / ((a+2m−1)(a+2m)).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let tiny = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..1000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
        d = 1.0 + even * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + even / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
        d = 1.0 + odd * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + odd / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// Groups of models that the Nemenyi test cannot tell apart, for the bars
/// of a critical-difference diagram: maximal runs (in rank order) whose
/// rank span is at most `cd`. Returns index ranges into `sorted_ranks`
/// (which must be ascending); runs of one model are left out.
pub fn cliques(sorted_ranks: &[f64], cd: f64) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for i in 0..sorted_ranks.len() {
        let mut j = i;
        while j + 1 < sorted_ranks.len() && sorted_ranks[j + 1] - sorted_ranks[i] <= cd {
            j += 1;
        }
        if j > i && !out.iter().any(|&(a, b)| a <= i && j <= b) {
            out.push((i, j));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Demšar (2006), Table 6: AUC of C4.5, C4.5+m, C4.5+cf and C4.5+m+cf
    /// on 14 UCI data sets.
    fn demsar_table6() -> Vec<Vec<f64>> {
        [
            [0.763, 0.768, 0.771, 0.798],
            [0.599, 0.591, 0.590, 0.569],
            [0.954, 0.971, 0.968, 0.967],
            [0.628, 0.661, 0.654, 0.657],
            [0.882, 0.888, 0.886, 0.898],
            [0.936, 0.931, 0.916, 0.931],
            [0.661, 0.668, 0.609, 0.685],
            [0.583, 0.583, 0.563, 0.625],
            [0.775, 0.838, 0.866, 0.875],
            [1.000, 1.000, 1.000, 1.000],
            [0.940, 0.962, 0.965, 0.962],
            [0.619, 0.666, 0.614, 0.669],
            // The table prints 0.975 twice, but the paper's ranks (2.893 and
            // 1.964 below) rank C4.5+cf ahead here: its unrounded AUC was higher.
            [0.972, 0.981, 0.97501, 0.975],
            [0.957, 0.978, 0.946, 0.970],
        ]
        .iter()
        .map(|r| r.to_vec())
        .collect()
    }

    #[test]
    fn ties_share_the_average_rank() {
        assert_eq!(rank_row(&[0.9, 0.9, 0.5], true), vec![1.5, 1.5, 3.0]);
        assert_eq!(rank_row(&[1.0, 1.0, 1.0, 1.0], true), vec![2.5; 4]);
        assert_eq!(rank_row(&[3.0, 1.0, 2.0], false), vec![3.0, 1.0, 2.0]);
        assert_eq!(rank_row(&[f64::NAN, 0.2, 0.7], true), vec![3.0, 2.0, 1.0]);
    }

    #[test]
    fn demsar_worked_example() {
        let rows = demsar_table6();
        let r = average_ranks(&rows, true);
        // "3.143, 2.000, 2.893 and 1.964" (section 3.2.2).
        for (got, want) in r.iter().zip([3.143, 2.000, 2.893, 1.964]) {
            assert!(close(*got, want, 5e-4), "{r:?}");
        }
        let f = friedman(&r, rows.len()).expect("k and n are large enough");
        // chi2_F = 9.28, F_F = 3.69 with 3 and 39 degrees of freedom.
        assert!(close(f.chi2, 9.28, 5e-3), "{}", f.chi2);
        assert!(close(f.f, 3.69, 5e-3), "{}", f.f);
        assert_eq!((f.df1, f.df2), (3.0, 39.0));
        // "The critical value of F(3,39) for alpha = 0.05 is 2.85": 3.69 rejects.
        assert!(f.f_p < 0.05 && f.f_p > 0.01, "{}", f.f_p);
        assert!(close(f_sf(2.85, 3.0, 39.0), 0.05, 1e-3));
        // Nemenyi: CD = 2.569 sqrt(4*5 / (6*14)) = 1.25 at 0.05, 1.12 at 0.10.
        assert!(close(nemenyi_cd(4, 14, 0.05), 1.25, 5e-3));
        assert!(close(nemenyi_cd(4, 14, 0.10), 1.12, 5e-3));
        // At 0.05 even the best and the worst (1.964 vs 3.143) are within CD:
        // one clique of all four.
        let mut sorted = r.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(cliques(&sorted, nemenyi_cd(4, 14, 0.05)), vec![(0, 3)]);
        // At 0.10 C4.5 falls out of the group of the two best.
        assert_eq!(
            cliques(&sorted, nemenyi_cd(4, 14, 0.10)),
            vec![(0, 2), (2, 3)]
        );
    }

    #[test]
    fn nemenyi_q_matches_demsar_table_5a() {
        let at_05 = [
            1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164,
        ];
        let at_10 = [
            1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920,
        ];
        for (i, (a, b)) in at_05.iter().zip(at_10).enumerate() {
            let k = i + 2;
            // The table rounds to three decimals.
            assert!(close(nemenyi_q(k, 0.05), *a, 1.5e-3), "k={k}");
            assert!(close(nemenyi_q(k, 0.10), b, 1.5e-3), "k={k}");
        }
        // Larger k keep growing slowly (q grows like sqrt(2 ln k)).
        let q20 = nemenyi_q(20, 0.05);
        assert!(q20 > 3.164 && q20 < 4.0, "{q20}");
    }

    #[test]
    fn special_functions_match_known_values() {
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-12));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
        assert!(close(normal_cdf(1.959_963_985), 0.975, 1e-9));
        assert!(close(normal_cdf(-1.0), 0.158_655_253_9, 1e-9));
        assert!(close(chi2_sf(3.841_458_821, 1.0), 0.05, 1e-9));
        assert!(close(chi2_sf(7.814_727_903, 3.0), 0.05, 1e-9));
        // I_0.5(2, 3) = 11/16.
        assert!(close(beta_inc(2.0, 3.0, 0.5), 0.6875, 1e-12));
        // F(1, 10): the 0.95 quantile is 4.964603.
        assert!(close(f_sf(4.964_603, 1.0, 10.0), 0.05, 1e-6));
        // F(2, 2) has P(F > f) = 1 / (1 + f).
        assert!(close(f_sf(3.0, 2.0, 2.0), 0.25, 1e-12));
    }

    #[test]
    fn friedman_edge_cases() {
        // Same ranking on every data set: chi2 = n(k-1), F infinite, p = 0.
        let rows = vec![vec![0.9, 0.8, 0.7]; 5];
        let f = friedman(&average_ranks(&rows, true), 5).expect("valid");
        assert!(close(f.chi2, 10.0, 1e-9));
        assert!(f.f.is_infinite() && f.f_p == 0.0);
        // All tied: no evidence at all.
        let rows = vec![vec![0.5; 3]; 4];
        let f = friedman(&average_ranks(&rows, true), 4).expect("valid");
        assert!(close(f.chi2, 0.0, 1e-12) && close(f.f_p, 1.0, 1e-12));
        assert!(friedman(&[1.0], 5).is_none());
        assert!(friedman(&[1.0, 2.0], 1).is_none());
    }
}
