//! 3×3 complex matrices and 3-vectors: the phase-frame blocks of the network
//! (one row and column per phase a, b, c).

use num_complex::Complex64 as C;

/// A 3-vector of phasors.
pub type V3 = [C; 3];
/// A 3×3 complex matrix, row-major.
pub type M3 = [[C; 3]; 3];

/// The zero vector.
pub const ZV: V3 = [C::new(0.0, 0.0); 3];
/// The zero matrix.
pub const ZM: M3 = [[C::new(0.0, 0.0); 3]; 3];

/// `a + b`.
#[inline]
pub fn add(a: &M3, b: &M3) -> M3 {
    let mut m = *a;
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] += b[i][j];
        }
    }
    m
}

/// `a - b`.
#[inline]
pub fn sub(a: &M3, b: &M3) -> M3 {
    let mut m = *a;
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] -= b[i][j];
        }
    }
    m
}

/// `a · b`.
#[inline]
pub fn mul(a: &M3, b: &M3) -> M3 {
    let mut m = ZM;
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    m
}

/// `aᵀ`.
#[inline]
pub fn transpose(a: &M3) -> M3 {
    let mut m = ZM;
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = a[j][i];
        }
    }
    m
}

/// `a · v`.
#[inline]
pub fn mulv(a: &M3, v: &V3) -> V3 {
    [
        a[0][0] * v[0] + a[0][1] * v[1] + a[0][2] * v[2],
        a[1][0] * v[0] + a[1][1] * v[1] + a[1][2] * v[2],
        a[2][0] * v[0] + a[2][1] * v[1] + a[2][2] * v[2],
    ]
}

/// `aᵀ·v`.
#[inline]
pub fn mulv_t(a: &M3, v: &V3) -> V3 {
    [
        a[0][0] * v[0] + a[1][0] * v[1] + a[2][0] * v[2],
        a[0][1] * v[0] + a[1][1] * v[1] + a[2][1] * v[2],
        a[0][2] * v[0] + a[1][2] * v[1] + a[2][2] * v[2],
    ]
}

/// `a - b` for vectors.
#[inline]
pub fn subv(a: &V3, b: &V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `a⁻¹` by cofactors, or `None` if `a` is singular: |det| ≤ 1e-300, or
/// below 1e-14 of the cube of the largest entry.
#[inline]
pub fn inv(a: &M3) -> Option<M3> {
    let c00 = a[1][1] * a[2][2] - a[1][2] * a[2][1];
    let c01 = a[1][2] * a[2][0] - a[1][0] * a[2][2];
    let c02 = a[1][0] * a[2][1] - a[1][1] * a[2][0];
    let det = a[0][0] * c00 + a[0][1] * c01 + a[0][2] * c02;
    // Moduli as |re| + |im|: as good for a singularity test as the true
    // modulus, without a `hypot` per entry. The determinant is compared
    // with the product of the row norms (Hadamard's bound), which it
    // reaches for orthogonal rows: a well-conditioned block of very
    // different row scales (a bolted fault's 1e9 S beside a line's 1e2 S)
    // passes, rows that depend on one another do not.
    let l1 = |z: C| z.re.abs() + z.im.abs();
    let scale: f64 = a
        .iter()
        .map(|row| row.iter().map(|&z| l1(z)).sum::<f64>())
        .product();
    let d = l1(det);
    if d <= 1e-300 || d <= 1e-14 * scale {
        return None;
    }
    let r = 1.0 / det;
    Some([
        [
            c00 * r,
            (a[0][2] * a[2][1] - a[0][1] * a[2][2]) * r,
            (a[0][1] * a[1][2] - a[0][2] * a[1][1]) * r,
        ],
        [
            c01 * r,
            (a[0][0] * a[2][2] - a[0][2] * a[2][0]) * r,
            (a[0][2] * a[1][0] - a[0][0] * a[1][2]) * r,
        ],
        [
            c02 * r,
            (a[0][1] * a[2][0] - a[0][0] * a[2][1]) * r,
            (a[0][0] * a[1][1] - a[0][1] * a[1][0]) * r,
        ],
    ])
}

/// The symmetric matrix with `s` on the diagonal and `m` off it: the phase
/// frame of a balanced sequence pair, Zs = (2·Z1 + Z0)/3, Zm = (Z0 − Z1)/3.
#[inline]
pub fn sym(s: C, m: C) -> M3 {
    [[s, m, m], [m, s, m], [m, m, s]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_times_matrix_is_identity() {
        let a: M3 = [
            [C::new(2.0, 1.0), C::new(0.5, -0.2), C::new(0.1, 0.0)],
            [C::new(0.3, 0.1), C::new(3.0, 2.0), C::new(-0.4, 0.3)],
            [C::new(0.0, 0.7), C::new(0.2, 0.2), C::new(1.5, -1.0)],
        ];
        let p = mul(&a, &inv(&a).unwrap());
        for (i, row) in p.iter().enumerate() {
            for (j, x) in row.iter().enumerate() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((x - C::new(want, 0.0)).norm() < 1e-14);
            }
        }
        assert!(inv(&ZM).is_none());
    }
}
