//! Small dense f64 linear algebra for the mask-tuning systems (at most a few thousand unknowns).

/// Row-major square matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Mat {
    pub n: usize,
    pub a: Vec<f64>,
}

impl Mat {
    pub fn zeros(n: usize) -> Self {
        Self {
            n,
            a: vec![0.0; n * n],
        }
    }
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.n + j]
    }
    pub fn matvec(&self, x: &[f64]) -> Vec<f64> {
        (0..self.n)
            .map(|i| {
                self.a[i * self.n..(i + 1) * self.n]
                    .iter()
                    .zip(x)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect()
    }
    /// `self * self` (for a symmetric matrix, `Gᵀ G`), i-k-j order for cache-friendly rows.
    pub fn square(&self) -> Mat {
        let n = self.n;
        let mut out = Mat::zeros(n);
        for i in 0..n {
            let row = &mut out.a[i * n..(i + 1) * n];
            for k in 0..n {
                let aik = self.a[i * n + k];
                if aik == 0.0 {
                    continue;
                }
                let bk = &self.a[k * n..(k + 1) * n];
                for (r, b) in row.iter_mut().zip(bk) {
                    *r += aik * b;
                }
            }
        }
        out
    }
}

/// Solves `A x = b` for symmetric positive definite `A` by Cholesky; `None` if `A` is not
/// numerically positive definite or the result is not finite.
pub fn cholesky_solve(a: &Mat, b: &[f64]) -> Option<Vec<f64>> {
    let n = a.n;
    let mut l = vec![0.0; n * n];
    for j in 0..n {
        let mut d = a.at(j, j);
        for k in 0..j {
            d -= l[j * n + k] * l[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        l[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a.at(i, j);
            let (ri, rj) = (&l[i * n..i * n + j], &l[j * n..j * n + j]);
            s -= ri.iter().zip(rj).map(|(x, y)| x * y).sum::<f64>();
            l[i * n + j] = s / d;
        }
    }
    // L y = b, then Lᵀ x = y.
    let mut y = b.to_vec();
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (y[i] - s) / l[i * n + i];
    }
    let mut x = y;
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (x[i] - s) / l[i * n + i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The reference's damped, centred normal-equation solve (spec §6.1): with `x = s - 1` and
/// `c = r - G·1`, minimise `||G x - c||² + ||x||²`, i.e. `(G² + I) x = G c`; returns `s = 1 + x`.
pub fn damped_centred_solve(g: &Mat, r: &[f64]) -> Option<Vec<f64>> {
    let ones = vec![1.0; g.n];
    let g1 = g.matvec(&ones);
    let c: Vec<f64> = r.iter().zip(&g1).map(|(a, b)| a - b).collect();
    let mut m = g.square();
    for i in 0..g.n {
        m.a[i * g.n + i] += 1.0;
    }
    let x = cholesky_solve(&m, &g.matvec(&c))?;
    Some(x.into_iter().map(|v| 1.0 + v).collect())
}

/// Reconstruction objective up to a constant: `sᵀ G s - 2 sᵀ r` (= ||A s - b||² - ||b||²).
pub fn objective(g: &Mat, r: &[f64], s: &[f64]) -> f64 {
    let gs = g.matvec(s);
    s.iter().zip(&gs).map(|(a, b)| a * b).sum::<f64>()
        - 2.0 * s.iter().zip(r).map(|(a, b)| a * b).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_spd_and_rejects_indefinite() {
        let a = Mat {
            n: 2,
            a: vec![4.0, 2.0, 2.0, 3.0],
        };
        let x = cholesky_solve(&a, &[2.0, 1.0]).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        assert!(cholesky_solve(
            &Mat {
                n: 2,
                a: vec![1.0, 2.0, 2.0, 1.0]
            },
            &[1.0, 1.0]
        )
        .is_none());
    }

    #[test]
    fn damped_solve_matches_eigen_formula_and_never_increases_objective() {
        // G = diag(100, 0.01): x_i = λ c_i / (λ² + 1).
        let g = Mat {
            n: 2,
            a: vec![100.0, 0.0, 0.0, 0.01],
        };
        let r = vec![300.0, 0.05];
        let s = damped_centred_solve(&g, &r).unwrap();
        let c = [300.0 - 100.0, 0.05 - 0.01];
        let want = [
            1.0 + 100.0 * c[0] / (1e4 + 1.0),
            1.0 + 0.01 * c[1] / (1e-4 + 1.0),
        ];
        assert!(
            (s[0] - want[0]).abs() < 1e-9 && (s[1] - want[1]).abs() < 1e-12,
            "{s:?}"
        );
        assert!(objective(&g, &r, &s) <= objective(&g, &r, &[1.0, 1.0]));
    }
}
