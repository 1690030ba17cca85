//! Small dense linear algebra for the mask-tuning systems (at most a few thousand unknowns): f64
//! helpers, and the reference's LSMR in the reference's (f32) or double precision.

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

/// Arithmetic in which [`lsmr`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The reference's: its G and right-hand side are float32 arrays, so SciPy (and CuPy) keep
    /// the Lanczos vectors and, by NumPy 2's promotion rules, some of the scalars in single
    /// precision. That changes when LSMR stops (and so the scales it returns), so mirroring the
    /// reference means running in f32.
    #[default]
    F32,
    /// Double precision throughout: closer to the exact minimiser, not what the reference runs.
    F64,
}

/// Outcome of [`lsmr`]: the solution, SciPy's `istop` code and the iterations used.
#[derive(Debug, Clone, PartialEq)]
pub struct Lsmr {
    pub x: Vec<f64>,
    pub istop: u8,
    pub iterations: usize,
}

/// A scalar as SciPy's `lsmr.py` holds it. NumPy 2 (NEP 50) promotes by type, not value:
/// Python ints and floats are "weak" and take the other operand's type, NumPy scalars are
/// "strong". On float32 input some of LSMR's scalars therefore stay float32 while others become
/// float64 (through `np.sign(1)`, an int64, or a NumPy float64), and which is which decides when
/// it stops; tracking the type of every scalar is what reproduces SciPy's iteration counts.
#[derive(Debug, Clone, Copy)]
enum Num {
    /// Python `int` (weak).
    Int(i64),
    /// Python `float` (weak; `math.sqrt` returns one).
    Float(f64),
    /// `np.int64` (`np.sign` of a Python int).
    I64(i64),
    F32(f32),
    F64(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    I64,
    F32,
    F64,
}

impl Num {
    fn kind(self) -> Kind {
        match self {
            Num::Int(_) => Kind::Int,
            Num::Float(_) => Kind::Float,
            Num::I64(_) => Kind::I64,
            Num::F32(_) => Kind::F32,
            Num::F64(_) => Kind::F64,
        }
    }

    fn f64(self) -> f64 {
        match self {
            Num::Int(i) | Num::I64(i) => i as f64,
            Num::Float(v) | Num::F64(v) => v,
            Num::F32(v) => v as f64,
        }
    }

    /// Only for operands of a float32 operation: NumPy casts weak Python values to float32.
    fn f32(self) -> f32 {
        match self {
            Num::Int(i) | Num::I64(i) => i as f32,
            Num::Float(v) | Num::F64(v) => v as f32,
            Num::F32(v) => v,
        }
    }

    fn int(self) -> i64 {
        match self {
            Num::Int(i) | Num::I64(i) => i,
            _ => unreachable!("integer operation on a float"),
        }
    }

    /// NEP 50: weak Python scalars adopt the strong operand's type; int64 with a float goes to
    /// float64, as do float32 with int64 or float64.
    fn promote(self, other: Num) -> Kind {
        use Kind::*;
        match (self.kind(), other.kind()) {
            (Int, Int) => Int,
            (Int | Float, Int | Float) => Float,
            (Int, k) | (k, Int) => k,
            (Float, I64) | (I64, Float) => F64,
            (Float, k) | (k, Float) => k,
            (I64, I64) => I64,
            (F32, F32) => F32,
            _ => F64,
        }
    }

    fn arith(
        self,
        other: Num,
        int: fn(i64, i64) -> i64,
        double: fn(f64, f64) -> f64,
        single: fn(f32, f32) -> f32,
    ) -> Num {
        match self.promote(other) {
            Kind::Int => Num::Int(int(self.int(), other.int())),
            Kind::I64 => Num::I64(int(self.int(), other.int())),
            Kind::Float => Num::Float(double(self.f64(), other.f64())),
            Kind::F64 => Num::F64(double(self.f64(), other.f64())),
            Kind::F32 => Num::F32(single(self.f32(), other.f32())),
        }
    }

    /// `abs()` keeps the type.
    fn abs(self) -> Num {
        match self {
            Num::Int(i) => Num::Int(i.abs()),
            Num::I64(i) => Num::I64(i.abs()),
            Num::Float(v) => Num::Float(v.abs()),
            Num::F32(v) => Num::F32(v.abs()),
            Num::F64(v) => Num::F64(v.abs()),
        }
    }

    /// `np.sign`: a Python int gives an int64, a Python float a float64; 0 for ±0 (unlike
    /// Rust's `signum`), NaN for NaN.
    fn sign(self) -> Num {
        fn s<F: PartialOrd + Copy>(v: F, zero: F, one: F, minus: F) -> F {
            if v > zero {
                one
            } else if v < zero {
                minus
            } else if v == zero {
                zero
            } else {
                v
            }
        }
        match self {
            Num::Int(i) | Num::I64(i) => Num::I64(i.signum()),
            Num::Float(v) | Num::F64(v) => Num::F64(s(v, 0.0, 1.0, -1.0)),
            Num::F32(v) => Num::F32(s(v, 0.0, 1.0, -1.0)),
        }
    }

    /// `math.sqrt`: a Python float whatever the argument.
    fn sqrt(self) -> Num {
        Num::Float(self.f64().sqrt())
    }

    /// `x**2` (a weak int exponent keeps the type).
    fn square(self) -> Num {
        self * self
    }

    fn compare(self, other: Num) -> Option<std::cmp::Ordering> {
        match self.promote(other) {
            Kind::Int | Kind::I64 => Some(self.int().cmp(&other.int())),
            Kind::Float | Kind::F64 => self.f64().partial_cmp(&other.f64()),
            Kind::F32 => self.f32().partial_cmp(&other.f32()),
        }
    }
}

impl PartialEq for Num {
    fn eq(&self, other: &Num) -> bool {
        self.compare(*other) == Some(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for Num {
    fn partial_cmp(&self, other: &Num) -> Option<std::cmp::Ordering> {
        self.compare(*other)
    }
}

impl std::ops::Add for Num {
    type Output = Num;
    fn add(self, o: Num) -> Num {
        self.arith(o, |a, b| a + b, |a, b| a + b, |a, b| a + b)
    }
}

impl std::ops::Sub for Num {
    type Output = Num;
    fn sub(self, o: Num) -> Num {
        self.arith(o, |a, b| a - b, |a, b| a - b, |a, b| a - b)
    }
}

impl std::ops::Mul for Num {
    type Output = Num;
    fn mul(self, o: Num) -> Num {
        self.arith(o, |a, b| a * b, |a, b| a * b, |a, b| a * b)
    }
}

impl std::ops::Div for Num {
    type Output = Num;
    /// True division: integers divide as floats (Python int → Python float, int64 → float64).
    fn div(self, o: Num) -> Num {
        match self.promote(o) {
            Kind::Int => Num::Float(self.f64() / o.f64()),
            Kind::I64 => Num::F64(self.f64() / o.f64()),
            _ => self.arith(o, |_, _| unreachable!(), |a, b| a / b, |a, b| a / b),
        }
    }
}

impl std::ops::Neg for Num {
    type Output = Num;
    fn neg(self) -> Num {
        match self {
            Num::Int(i) => Num::Int(-i),
            Num::I64(i) => Num::I64(-i),
            Num::Float(v) => Num::Float(-v),
            Num::F32(v) => Num::F32(-v),
            Num::F64(v) => Num::F64(-v),
        }
    }
}

/// Python's `max(a, b)`: `b` only if `b > a`, so ties and NaNs keep `a` (and its type).
fn py_max(a: Num, b: Num) -> Num {
    if b > a {
        b
    } else {
        a
    }
}

/// Python's `min(a, b)`: `b` only if `b < a`.
fn py_min(a: Num, b: Num) -> Num {
    if b < a {
        b
    } else {
        a
    }
}

/// SciPy's `_sym_ortho` (stable Givens rotation), with its mixed scalar types.
fn sym_ortho(a: Num, b: Num) -> (Num, Num, Num) {
    let (zero, one) = (Num::Int(0), Num::Int(1));
    if b == zero {
        (a.sign(), zero, a.abs())
    } else if a == zero {
        (zero, b.sign(), b.abs())
    } else if b.abs() > a.abs() {
        let tau = a / b;
        let s = b.sign() / (one + tau * tau).sqrt();
        let c = s * tau;
        (c, s, b / s)
    } else {
        let tau = b / a;
        let c = a.sign() / (one + tau * tau).sqrt();
        let s = c * tau;
        (c, s, a / c)
    }
}

/// The array element types LSMR runs in (f32 or f64).
trait Real:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + Send
    + Sync
{
    const ZERO: Self;
    fn f64(self) -> f64;
    fn num(self) -> Num;
    fn sqrt(self) -> Self;
    /// An array element times scalar `s`, stored back in the array: NumPy computes in the
    /// promoted type (float64 for a strong float64/int64 scalar) and casts back.
    fn scaled(self, s: Num) -> Self;
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    fn f64(self) -> f64 {
        self as f64
    }
    fn num(self) -> Num {
        Num::F32(self)
    }
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
    fn scaled(self, s: Num) -> f32 {
        match s {
            Num::F64(_) | Num::I64(_) => (self as f64 * s.f64()) as f32,
            _ => self * s.f32(),
        }
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    fn f64(self) -> f64 {
        self
    }
    fn num(self) -> Num {
        Num::F64(self)
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
    fn scaled(self, s: Num) -> f64 {
        self * s.f64()
    }
}

/// Dot product accumulated in the element type, as BLAS does for NumPy's `dot`/`norm`: eight
/// running sums (which also lets the compiler vectorise), combined pairwise, then the tail.
#[inline(always)]
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let body = a.len() - a.len() % 8;
    let mut acc = [T::ZERO; 8];
    for (ca, cb) in a[..body].chunks_exact(8).zip(b[..body].chunks_exact(8)) {
        for k in 0..8 {
            acc[k] = acc[k] + ca[k] * cb[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (&p, &q) in a[body..].iter().zip(&b[body..]) {
        s = s + p * q;
    }
    s
}

/// Below this size a product runs on the calling thread (splitting would cost more than it saves).
const PARALLEL_FROM: usize = 256;

/// Slices of `out` handed to one thread: a multiple of 16 elements, one per available thread.
fn block_len(n: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    n.div_ceil(threads).div_ceil(16) * 16
}

/// `G v` for row-major `g` (n×n): one contiguous dot product per row, rows split across
/// threads (each row's sum is unchanged by the split).
fn matvec<T: Real>(g: &[T], v: &[T], out: &mut [T]) {
    use rayon::prelude::*;
    let n = v.len();
    let rows = |out: &mut [T], g: &[T]| {
        for (o, row) in out.iter_mut().zip(g.chunks_exact(n)) {
            *o = dot(row, v);
        }
    };
    if n < PARALLEL_FROM {
        return rows(out, g);
    }
    let b = block_len(n);
    out.par_chunks_mut(b)
        .zip(g.par_chunks(b * n))
        .for_each(|(o, g)| rows(o, g));
}

/// `Gᵀ u` (SciPy's `rmatvec`; G need not be exactly symmetric): rows of G scaled by `u` and
/// summed in order, as BLAS's non-transposed gemv does on the transposed view. Threads take
/// disjoint column blocks, each still summing over the rows in order.
fn rmatvec<T: Real>(g: &[T], u: &[T], out: &mut [T]) {
    use rayon::prelude::*;
    let n = u.len();
    let cols = |c0: usize, out: &mut [T]| {
        out.iter_mut().for_each(|o| *o = T::ZERO);
        let w = out.len();
        let col = |j: usize| &g[j * n + c0..j * n + c0 + w];
        // Four rows per pass over `out` (a quarter of the loads and stores); each element still
        // adds the rows in order, ((o + a0·u0) + a1·u1) + ..., so the sums are unchanged.
        let quads = n - n % 4;
        for j in (0..quads).step_by(4) {
            let (u0, u1, u2, u3) = (u[j], u[j + 1], u[j + 2], u[j + 3]);
            let rows = col(j)
                .iter()
                .zip(col(j + 1))
                .zip(col(j + 2))
                .zip(col(j + 3));
            for (o, (((&a0, &a1), &a2), &a3)) in out.iter_mut().zip(rows) {
                *o = *o + a0 * u0 + a1 * u1 + a2 * u2 + a3 * u3;
            }
        }
        for j in quads..n {
            let uj = u[j];
            for (o, &a) in out.iter_mut().zip(col(j)) {
                *o = *o + a * uj;
            }
        }
    };
    if n < PARALLEL_FROM {
        return cols(0, out);
    }
    let b = block_len(n);
    out.par_chunks_mut(b)
        .enumerate()
        .for_each(|(i, o)| cols(i * b, o));
}

/// NumPy's pairwise summation (`np.add.reduce` over a contiguous axis, so `G.sum(1)`): blocks
/// of at most 128 summed with eight accumulators, halves added recursively.
fn pairwise_sum<T: Real>(a: &[T]) -> T {
    let n = a.len();
    if n < 8 {
        a.iter().fold(T::ZERO, |s, &v| s + v)
    } else if n <= 128 {
        let mut r = [T::ZERO; 8];
        r.copy_from_slice(&a[..8]);
        let body = n - n % 8;
        for block in a[8..body].chunks_exact(8) {
            for k in 0..8 {
                r[k] = r[k] + block[k];
            }
        }
        let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        a[body..].iter().fold(res, |s, &v| s + v)
    } else {
        let half = n / 2;
        let half = half - half % 8;
        pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
    }
}

/// LSMR (Fong & Saunders 2011), a line-by-line port of SciPy 1.17's
/// `scipy.sparse.linalg.lsmr` (which CuPy mirrors) with its defaults atol = btol = 1e-6,
/// conlim = 1e8, from x = 0, for a row-major n×n `g` and `b` already in the working precision.
/// Vectors u, v, h are in `T` as SciPy's are in the input dtype; x and hbar are f64 as SciPy
/// allocates them (`result_type(A, b, float)`); every scalar carries its NumPy type.
fn lsmr_in<T: Real>(g: &[T], b: &[T], damp: f64, maxiter: usize) -> Lsmr {
    use Num::{Float, Int};
    let n = b.len();
    let (atol, btol, conlim) = (Float(1e-6), Float(1e-6), Float(1e8));
    // The reference passes `damp=1`, a Python int.
    let damp = if damp.fract() == 0.0 && damp.abs() < 1e15 {
        Int(damp as i64)
    } else {
        Float(damp)
    };
    let (zero, one) = (Int(0), Int(1));
    let norm = |v: &[T]| dot(v, v).sqrt().num();
    let scale = |v: &mut [T], s: Num| v.iter_mut().for_each(|e| *e = e.scaled(s));

    let mut u = b.to_vec();
    let normb = norm(&u);
    let mut x = vec![0.0f64; n];
    let mut beta = normb;
    let mut v = vec![T::ZERO; n];
    let mut alpha = zero;
    if beta > zero {
        scale(&mut u, one / beta);
        rmatvec(g, &u, &mut v);
        alpha = norm(&v);
    }
    if alpha > zero {
        scale(&mut v, one / alpha);
    }

    let mut zetabar = alpha * beta;
    let mut alphabar = alpha;
    let (mut rho, mut rhobar, mut cbar, mut sbar) = (one, one, one, zero);
    let mut h = v.clone();
    let mut hbar = vec![0.0f64; n];
    let mut betadd = beta;
    let (mut betad, mut rhodold, mut tautildeold) = (zero, one, zero);
    let (mut thetatilde, mut zeta, mut d) = (zero, zero, zero);
    let mut norm_a2 = alpha * alpha;
    let mut maxrbar = zero;
    let mut minrbar = Float(1e100);
    let ctol = if conlim > zero { one / conlim } else { zero };
    let normar = alpha * beta;
    if normar == zero || normb == zero {
        return Lsmr {
            x,
            istop: 0,
            iterations: 0,
        };
    }

    let mut itn = 0;
    let mut istop = 0u8;
    let mut av = vec![T::ZERO; n];
    while itn < maxiter {
        itn += 1;
        // Bidiagonalisation: beta u = G v - alpha u; alpha v = Gᵀ u - beta v.
        matvec(g, &v, &mut av);
        let s = -alpha;
        for (ui, &ai) in u.iter_mut().zip(&av) {
            *ui = ui.scaled(s) + ai;
        }
        beta = norm(&u);
        if beta > zero {
            scale(&mut u, one / beta);
            rmatvec(g, &u, &mut av);
            let s = -beta;
            for (vi, &ai) in v.iter_mut().zip(&av) {
                *vi = vi.scaled(s) + ai;
            }
            alpha = norm(&v);
            if alpha > zero {
                scale(&mut v, one / alpha);
            }
        }

        // Rotations.
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
        (cbar, sbar, rhobar) = sym_ortho(cbar * rho, thetanew);
        zeta = cbar * zetabar;
        zetabar = -sbar * zetabar;

        // Update h, hbar, x (hbar and x are f64 arrays, so scalars act in f64).
        let f = (-(thetabar * rho / (rhoold * rhobarold))).f64();
        for (hb, &hi) in hbar.iter_mut().zip(&h) {
            *hb = *hb * f + hi.f64();
        }
        let step = (zeta / (rho * rhobar)).f64();
        for (xi, &hb) in x.iter_mut().zip(&hbar) {
            *xi += step * hb;
        }
        let fh = -(thetanew / rho);
        for (hi, &vi) in h.iter_mut().zip(&v) {
            *hi = hi.scaled(fh) + vi;
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
        d = d + betacheck * betacheck;
        let normr = (d + (betad - taud).square() + betadd * betadd).sqrt();

        // Estimates of ||A|| and cond(A).
        norm_a2 = norm_a2 + beta * beta;
        let norm_a = norm_a2.sqrt();
        norm_a2 = norm_a2 + alpha * alpha;
        maxrbar = py_max(maxrbar, rhobarold);
        if itn > 1 {
            minrbar = py_min(minrbar, rhobarold);
        }
        let cond_a = py_max(maxrbar, rhotemp) / py_min(minrbar, rhotemp);

        // Stopping tests.
        let normar = zetabar.abs();
        let normx = Num::F64(dot(&x, &x).sqrt());
        let test1 = normr / normb;
        let test2 = if norm_a * normr != zero {
            normar / (norm_a * normr)
        } else {
            Float(f64::INFINITY)
        };
        let test3 = one / cond_a;
        let t1 = test1 / (one + norm_a * normx / normb);
        let rtol = btol + atol * norm_a * normx / normb;
        if itn >= maxiter {
            istop = 7;
        }
        if one + test3 <= one {
            istop = 6;
        }
        if one + test2 <= one {
            istop = 5;
        }
        if one + t1 <= one {
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

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&e| e as f32).collect()
}

/// LSMR on the square system `g` (`min ||g x - b||² + damp² ||x||²`) as SciPy's
/// `lsmr(g, b, damp=damp, maxiter=maxiter)` computes it on arrays of the given precision:
/// for [`Precision::F32`], `g` and `b` are rounded to f32 first, as the reference's float32
/// inputs are. `istop` 0-2 means converged; the reference treats anything else as failure.
pub fn lsmr(g: &Mat, b: &[f64], damp: f64, maxiter: usize, precision: Precision) -> Lsmr {
    assert_eq!(b.len(), g.n, "right-hand side length");
    match precision {
        Precision::F64 => lsmr_in(&g.a, b, damp, maxiter),
        Precision::F32 => lsmr_in(&to_f32(&g.a), &to_f32(b), damp, maxiter),
    }
}

fn centred<T: Real>(g: &[T], r: &[T]) -> Vec<T> {
    r.iter()
        .zip(g.chunks_exact(r.len().max(1)))
        .map(|(&ri, row)| ri - pairwise_sum(row))
        .collect()
}

/// The centred right-hand side `c = r - G·1` that [`damped_centred_solve`] hands to LSMR,
/// computed as the reference's `atb - G.sum(1)` is on arrays of the given precision (NumPy's
/// pairwise row sums; for [`Precision::F32`] the values are f32s): LSMR's iteration count is
/// sensitive to the last bits of its right-hand side.
pub fn centred_rhs(g: &Mat, r: &[f64], precision: Precision) -> Vec<f64> {
    assert_eq!(r.len(), g.n, "right-hand side length");
    match precision {
        Precision::F64 => centred(&g.a, r),
        Precision::F32 => centred(&to_f32(&g.a), &to_f32(r))
            .into_iter()
            .map(f64::from)
            .collect(),
    }
}

/// The reference's damped, centred normal-equation solve (spec §6.1): with `x = s - 1` and
/// `c = r - G·1`, LSMR on `G` with damp 1 and CuPy's default iteration limit 5·n
/// (`min ||G x - c||² + ||x||²`); returns `s = 1 + x`, or why when LSMR reports failure
/// (istop 3-7) or the result is not finite.
pub fn damped_centred_solve(g: &Mat, r: &[f64], precision: Precision) -> Result<Vec<f64>, String> {
    assert_eq!(r.len(), g.n, "right-hand side length");
    let maxiter = 5 * g.n;
    let sol = match precision {
        Precision::F64 => lsmr_in(&g.a, &centred(&g.a, r), 1.0, maxiter),
        Precision::F32 => {
            let g32 = to_f32(&g.a);
            let c = centred(&g32, &to_f32(r));
            lsmr_in(&g32, &c, 1.0, maxiter)
        }
    };
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
        for (precision, tol) in [(Precision::F64, 1e-4), (Precision::F32, 1e-2)] {
            let it = damped_centred_solve(&g, &r, precision).unwrap();
            let err = exact
                .iter()
                .zip(&it)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < tol, "{precision:?}: max |lsmr - exact| = {err}");
        }
        // SciPy's answer on a 2x2 by hand: G = diag(100, 0.01) reproduces the eigen formula.
        let g2 = Mat {
            n: 2,
            a: vec![100.0, 0.0, 0.0, 0.01],
        };
        for (precision, tol) in [(Precision::F64, 1e-6), (Precision::F32, 1e-4)] {
            let s = damped_centred_solve(&g2, &[300.0, 0.05], precision).unwrap();
            assert!(
                (s[0] - (1.0 + 100.0 * 200.0 / 10001.0)).abs() < tol,
                "{precision:?}: {s:?}"
            );
            let z = lsmr(&g2, &[0.0, 0.0], 1.0, 10, precision);
            assert_eq!((z.istop, z.iterations), (0, 0));
        }
        // An iteration limit that LSMR reaches is istop 7 (a failure for the reference).
        let hit = lsmr(&g, &r, 1.0, 2, Precision::F32);
        assert_eq!((hit.istop, hit.iterations), (7, 2));
    }

    #[test]
    fn lsmr_is_bitwise_scipy_where_float64_scalars_meet_float32_vectors() {
        // With ||G|| below damp, `_sym_ortho(alphabar, damp)` takes the branch where np.sign(1)
        // is an int64, so float64 scalars scale float32 vectors: where a wrong NumPy type shows
        // in the bits. Expected: SciPy 1.17.1's lsmr.py (NumPy 2.4.6) on this G and b with its
        // matvec, rmatvec and norm given kiln's summation order, which it matches bit for bit.
        let (n, k) = (40, 12);
        let mut seed = 11u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f64) / (1u64 << 31) as f64 - 0.5
        };
        let v: Vec<f64> = (0..n * k).map(|_| rnd() * 0.45).collect();
        let mut g = Mat::zeros(n);
        for i in 0..n {
            for j in 0..n {
                g.a[i * n + j] = (0..k).map(|t| v[i * k + t] * v[j * k + t]).sum::<f64>();
            }
        }
        let b: Vec<f64> = (0..n).map(|_| rnd()).collect();
        let want = [
            (
                Precision::F32,
                [
                    0.06391501511239686,
                    -0.04559592783528856,
                    0.0549929350117945,
                ],
            ),
            (
                Precision::F64,
                [0.06391501672955, -0.04559594988042874, 0.05499295686043537],
            ),
        ];
        for (precision, x) in want {
            let s = lsmr(&g, &b, 1.0, 200, precision);
            assert_eq!((s.istop, s.iterations), (2, 7), "{precision:?}");
            assert_eq!([s.x[0], s.x[13], s.x[39]], x, "{precision:?}");
        }
    }

    #[test]
    fn scalars_promote_as_numpy_2_does() {
        use Num::*;
        // |alphabar| < damp: np.sign(1) is an int64, so the rotation leaves float32 behind.
        let (c, s, r) = sym_ortho(F32(0.5), Int(1));
        assert!(
            matches!((c, s, r), (F64(_), F64(_), F64(_))),
            "{c:?} {s:?} {r:?}"
        );
        // Otherwise np.sign(float32) / math.sqrt(...) stays float32 (a Python float is weak).
        let (c, s, r) = sym_ortho(F32(2.0), Int(1));
        assert!(
            matches!((c, s, r), (F32(_), F32(_), F32(_))),
            "{c:?} {s:?} {r:?}"
        );
        assert!(matches!(Float(1.5) * F32(2.0), F32(v) if v == 3.0));
        assert!(matches!(F32(1.5) * F64(2.0), F64(v) if v == 3.0));
        assert!(matches!(Int(1) / Int(2), Float(v) if v == 0.5));
        // min(1e100, float32): the Python float is cast to float32 (inf) for the comparison.
        assert!(matches!(py_min(Float(1e100), F32(3.0)), F32(v) if v == 3.0));
        assert!(matches!(py_max(Int(0), Int(0)), Int(0)));
        assert!(matches!(Float(0.0).sign(), F64(v) if v == 0.0));
        // An f64 scalar times a float32 element is computed in f64, then rounded to f32.
        let e = 1.0f32 + f32::EPSILON;
        assert_eq!(
            e.scaled(F64(1.0 - 1e-9)),
            ((e as f64) * (1.0 - 1e-9)) as f32
        );
        assert_eq!(e.scaled(Float(1.0 - 1e-9)), e);
    }

    #[test]
    fn pairwise_sum_matches_numpy_blocking() {
        // NumPy: < 8 sequential; ≤ 128 eight accumulators; above, split at a multiple of 8.
        let a: Vec<f32> = (0..300).map(|i| 1.0 + (i as f32) * 1e-3).collect();
        let block = |a: &[f32]| {
            let mut r = [0f32; 8];
            r.copy_from_slice(&a[..8]);
            let body = a.len() - a.len() % 8;
            for i in (8..body).step_by(8) {
                for k in 0..8 {
                    r[k] += a[i + k];
                }
            }
            let mut s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for &v in &a[body..] {
                s += v;
            }
            s
        };
        // 300 → 144 + 156 → (72 + 72) + (72 + 84).
        let want =
            (block(&a[..72]) + block(&a[72..144])) + (block(&a[144..216]) + block(&a[216..]));
        assert_eq!(pairwise_sum(&a), want);
        assert_eq!(
            pairwise_sum(&a[..5]),
            (((a[0] + a[1]) + a[2]) + a[3]) + a[4]
        );
    }

    #[test]
    fn threaded_products_equal_the_sequential_sums_bit_for_bit() {
        // Sizes below and above PARALLEL_FROM, with a ragged last block and a row count that is
        // not a multiple of four; the matrix is not symmetric so Gᵀu ≠ Gu.
        for n in [37usize, 301, 1031] {
            let mut state = 0x9e37_79b9_u32 ^ n as u32;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            };
            let g: Vec<f32> = (0..n * n).map(|_| next()).collect();
            let v: Vec<f32> = (0..n).map(|_| next()).collect();
            let seq_mv: Vec<f32> = g.chunks_exact(n).map(|row| dot(row, &v)).collect();
            let mut seq_rmv = vec![0f32; n];
            for (j, row) in g.chunks_exact(n).enumerate() {
                for (o, &a) in seq_rmv.iter_mut().zip(row) {
                    *o += a * v[j];
                }
            }
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap();
            let (mut mv, mut rmv) = (vec![0f32; n], vec![0f32; n]);
            pool.install(|| {
                matvec(&g, &v, &mut mv);
                rmatvec(&g, &v, &mut rmv);
            });
            let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&mv), bits(&seq_mv), "G v, n = {n}");
            assert_eq!(bits(&rmv), bits(&seq_rmv), "Gᵀ u, n = {n}");
        }
    }
}
