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

/// Outcome of [`lsmr`]: the solution, SciPy's `istop` code and the iterations used.
#[derive(Debug, Clone, PartialEq)]
pub struct Lsmr {
    pub x: Vec<f64>,
    pub istop: u8,
    pub iterations: usize,
}

fn sym_ortho(a: f64, b: f64) -> (f64, f64, f64) {
    if b == 0.0 {
        (a.signum() * (a != 0.0) as u8 as f64, 0.0, a.abs())
    } else if a == 0.0 {
        (0.0, b.signum(), b.abs())
    } else if b.abs() > a.abs() {
        let tau = a / b;
        let s = b.signum() / (1.0 + tau * tau).sqrt();
        let c = s * tau;
        (c, s, b / s)
    } else {
        let tau = b / a;
        let c = a.signum() / (1.0 + tau * tau).sqrt();
        let s = c * tau;
        (c, s, a / c)
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// LSMR (Fong & Saunders 2011) for a symmetric matrix `g`, a line-by-line port of SciPy's
/// `scipy.sparse.linalg.lsmr` (which CuPy mirrors): minimises `||g x - b||² + damp² ||x||²`
/// from `x = 0`, stopping on SciPy's tests with its defaults (atol = btol = 1e-6, conlim = 1e8,
/// maxiter = n). The official code treats `istop` 0-2 as success and anything else as failure.
pub fn lsmr(g: &Mat, b: &[f64], damp: f64) -> Lsmr {
    let n = g.n;
    let (atol, btol, conlim) = (1e-6, 1e-6, 1e8);
    let maxiter = n;
    let mut u = b.to_vec();
    let normb = norm(b);
    let mut x = vec![0.0; n];
    let mut beta = normb;
    let mut v;
    let mut alpha;
    if beta > 0.0 {
        u.iter_mut().for_each(|e| *e /= beta);
        v = g.matvec(&u);
        alpha = norm(&v);
    } else {
        v = vec![0.0; n];
        alpha = 0.0;
    }
    if alpha > 0.0 {
        v.iter_mut().for_each(|e| *e /= alpha);
    }
    let mut zetabar = alpha * beta;
    let mut alphabar = alpha;
    let mut rho = 1.0;
    let mut rhobar = 1.0;
    let mut cbar = 1.0;
    let mut sbar = 0.0;
    let mut h = v.clone();
    let mut hbar = vec![0.0; n];
    let mut betadd = beta;
    let mut betad = 0.0;
    let mut rhodold = 1.0;
    let mut tautildeold = 0.0;
    let mut thetatilde = 0.0;
    let mut zeta = 0.0;
    let mut d = 0.0;
    let mut norm_a2 = alpha * alpha;
    let mut maxrbar: f64 = 0.0;
    let mut minrbar: f64 = 1e100;
    let ctol = 1.0 / conlim;
    let normar = alpha * beta;
    if normar == 0.0 || normb == 0.0 {
        return Lsmr {
            x,
            istop: 0,
            iterations: 0,
        };
    }
    let mut itn = 0;
    let mut istop = 0u8;
    while itn < maxiter {
        itn += 1;
        // Bidiagonalisation: beta u = G v - alpha u; alpha v = G u - beta v.
        let gv = g.matvec(&v);
        for (ui, gi) in u.iter_mut().zip(&gv) {
            *ui = gi - alpha * *ui;
        }
        beta = norm(&u);
        if beta > 0.0 {
            u.iter_mut().for_each(|e| *e /= beta);
            let gu = g.matvec(&u);
            for (vi, gi) in v.iter_mut().zip(&gu) {
                *vi = gi - beta * *vi;
            }
            alpha = norm(&v);
            if alpha > 0.0 {
                v.iter_mut().for_each(|e| *e /= alpha);
            }
        }
        let (chat, shat, alphahat) = sym_ortho(alphabar, damp);
        let rhoold = rho;
        let (c, s, r) = sym_ortho(alphahat, beta);
        rho = r;
        let thetanew = s * alpha;
        alphabar = c * alpha;
        let rhobarold = rhobar;
        let zetaold = zeta;
        let thetabar = sbar * rho;
        let rhotemp = cbar * rho;
        let (cb, sb, rb) = sym_ortho(cbar * rho, thetanew);
        cbar = cb;
        sbar = sb;
        rhobar = rb;
        zeta = cbar * zetabar;
        zetabar *= -sbar;
        let f = -(thetabar * rho / (rhoold * rhobarold));
        for i in 0..n {
            hbar[i] = hbar[i] * f + h[i];
        }
        let step = zeta / (rho * rhobar);
        for i in 0..n {
            x[i] += step * hbar[i];
        }
        let fh = -(thetanew / rho);
        for i in 0..n {
            h[i] = h[i] * fh + v[i];
        }
        // Estimate of ||r||.
        let betaacute = chat * betadd;
        let betacheck = -shat * betadd;
        let betahat = c * betaacute;
        betadd = -s * betaacute;
        let thetatildeold = thetatilde;
        let (ctildeold, stildeold, rhotildeold) = sym_ortho(rhodold, thetabar);
        thetatilde = stildeold * rhobar;
        rhodold = ctildeold * rhobar;
        betad = -stildeold * betad + ctildeold * betahat;
        tautildeold = (zetaold - thetatildeold * tautildeold) / rhotildeold;
        let taud = (zeta - thetatilde * tautildeold) / rhodold;
        d += betacheck * betacheck;
        let normr = (d + (betad - taud).powi(2) + betadd * betadd).sqrt();
        // Estimates of ||A|| and cond(A).
        norm_a2 += beta * beta;
        let norm_a = norm_a2.sqrt();
        norm_a2 += alpha * alpha;
        maxrbar = maxrbar.max(rhobarold);
        if itn > 1 {
            minrbar = minrbar.min(rhobarold);
        }
        let cond_a = maxrbar.max(rhotemp) / minrbar.min(rhotemp);
        // Stopping tests.
        let normar = zetabar.abs();
        let normx = norm(&x);
        let test1 = normr / normb;
        let test2 = if norm_a * normr != 0.0 {
            normar / (norm_a * normr)
        } else {
            f64::INFINITY
        };
        let test3 = 1.0 / cond_a;
        let t1 = test1 / (1.0 + norm_a * normx / normb);
        let rtol = btol + atol * norm_a * normx / normb;
        if itn >= maxiter {
            istop = 7;
        }
        if 1.0 + test3 <= 1.0 {
            istop = 6;
        }
        if 1.0 + test2 <= 1.0 {
            istop = 5;
        }
        if 1.0 + t1 <= 1.0 {
            istop = 4;
        }
        if test3 <= ctol {
            istop = 3;
        }
        if test2 <= atol {
            istop = 2;
        }
        if test1 <= rtol {
            istop = 1;
        }
        if istop > 0 {
            break;
        }
    }
    Lsmr {
        x,
        istop,
        iterations: itn,
    }
}

/// The reference's damped, centred normal-equation solve (spec §6.1): with `x = s - 1` and
/// `c = r - G·1`, LSMR on `G` with damp 1 (`min ||G x - c||² + ||x||²`); returns `s = 1 + x`, or
/// why when LSMR reports failure (istop 3-7) or the result is not finite.
pub fn damped_centred_solve(g: &Mat, r: &[f64]) -> Result<Vec<f64>, String> {
    let ones = vec![1.0; g.n];
    let g1 = g.matvec(&ones);
    let c: Vec<f64> = r.iter().zip(&g1).map(|(a, b)| a - b).collect();
    let sol = lsmr(g, &c, 1.0);
    if sol.istop > 2 {
        return Err(format!(
            "solver failure (LSMR istop {} after {} iterations on a {}-unknown system)",
            sol.istop, sol.iterations, g.n
        ));
    }
    if sol.x.iter().any(|v| !v.is_finite()) {
        return Err("solver failure (non-finite solution)".into());
    }
    Ok(sol.x.into_iter().map(|v| 1.0 + v).collect())
}

/// The exact minimiser of the same damped problem, `(G² + I) x = G c` by Cholesky in f64 (what
/// LSMR converges to; used to check it).
pub fn exact_damped_centred_solve(g: &Mat, r: &[f64]) -> Option<Vec<f64>> {
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
        let s = exact_damped_centred_solve(&g, &r).unwrap();
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

    #[test]
    fn lsmr_converges_to_the_exact_damped_solution() {
        // A well-conditioned random SPD system: LSMR (istop 1 or 2) matches the exact solve.
        let n = 30;
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f64) / (1u64 << 31) as f64 - 0.5
        };
        let v: Vec<f64> = (0..n * 40).map(|_| rnd()).collect();
        let mut g = Mat::zeros(n);
        for i in 0..n {
            for j in 0..n {
                g.a[i * n + j] = (0..40).map(|k| v[i * 40 + k] * v[j * 40 + k]).sum::<f64>();
            }
        }
        let r: Vec<f64> = (0..n).map(|_| rnd() * 10.0).collect();
        let exact = exact_damped_centred_solve(&g, &r).unwrap();
        let it = damped_centred_solve(&g, &r).unwrap();
        let err = exact
            .iter()
            .zip(&it)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-4, "max |lsmr - exact| = {err}");
        // SciPy's answer on a 2x2 by hand: G = diag(100, 0.01) reproduces the eigen formula.
        let g2 = Mat {
            n: 2,
            a: vec![100.0, 0.0, 0.0, 0.01],
        };
        let s = damped_centred_solve(&g2, &[300.0, 0.05]).unwrap();
        assert!(
            (s[0] - (1.0 + 100.0 * 200.0 / 10001.0)).abs() < 1e-6,
            "{s:?}"
        );
        let z = lsmr(&g2, &[0.0, 0.0], 1.0);
        assert_eq!((z.istop, z.iterations), (0, 0));
    }
}
