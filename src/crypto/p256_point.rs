//! Points of P-256 for `p256.rs` and `p256_table.rs`, in variable time (every input of a
//! verification is public): Jacobian coordinates (X/Z², Y/Z³) with the doubling for a = −3
//! (3M + 5S), additions of a point kept with its Z² and Z³ ("add-2007-bl" less two products)
//! and of an affine point ("madd-2007-bl", 7M + 4S), odd multiples for window tables, and the
//! affine form of many points with one field inversion (Montgomery's trick).

use crate::p256_field::Fe;

/// The group order n, big-endian (SEC 2).
pub(crate) const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The generator's coordinates, big-endian (SEC 2).
pub(crate) const GX: [u8; 32] = [
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
];
pub(crate) const GY: [u8; 32] = [
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
];

/// A point in Jacobian coordinates: (X/Z², Y/Z³); `Z = 0` is the point at infinity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Jacobian {
    pub(crate) x: Fe,
    pub(crate) y: Fe,
    pub(crate) z: Fe,
}

/// A point in Jacobian coordinates with its Z² and Z³, for repeated additions of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cached {
    p: Jacobian,
    zz: Fe,
    zzz: Fe,
}

impl Cached {
    pub(crate) fn new(p: &Jacobian) -> Cached {
        let zz = p.z.square();
        Cached {
            p: *p,
            zz,
            zzz: zz.mul(&p.z),
        }
    }
}

/// A finite point in affine coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Affine {
    pub(crate) x: Fe,
    pub(crate) y: Fe,
}

impl Affine {
    /// The generator G.
    pub(crate) fn generator() -> Option<Affine> {
        Some(Affine {
            x: Fe::from_bytes(&GX)?,
            y: Fe::from_bytes(&GY)?,
        })
    }
}

impl Jacobian {
    pub(crate) const INFINITY: Jacobian = Jacobian {
        x: Fe::ONE,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    pub(crate) fn from_affine(p: &Affine) -> Jacobian {
        Jacobian {
            x: p.x,
            y: p.y,
            z: Fe::ONE,
        }
    }

    pub(crate) fn is_infinity(&self) -> bool {
        self.z.is_zero()
    }

    /// 2·P for a = −3 ("dbl-2001-b"). Infinity doubles to infinity (Z stays 0); P-256 has
    /// no point of order 2, so Y = 0 never occurs on a finite point.
    pub(crate) fn double(&self) -> Jacobian {
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.mul_small(3);
        let beta4 = beta.mul_small(4);
        let x = alpha.square().sub(&beta.mul_small(8));
        let z = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let gamma2_8 = gamma.square().mul_small(8);
        let y = alpha.mul(&beta4.sub(&x)).sub(&gamma2_8);
        Jacobian { x, y, z }
    }

    /// P + Q (or P − Q when `negate`) for a Q with its Z² and Z³ at hand: "add-2007-bl"
    /// less the square and the multiplication that give them.
    pub(crate) fn add_cached(&self, q: &Cached, negate: bool) -> Jacobian {
        let qy = if negate { q.p.y.neg() } else { q.p.y };
        if self.is_infinity() {
            return Jacobian { y: qy, ..q.p };
        }
        if q.p.is_infinity() {
            return *self;
        }
        let z1z1 = self.z.square();
        let u1 = self.x.mul(&q.zz);
        let u2 = q.p.x.mul(&z1z1);
        let s1 = self.y.mul(&q.zzz);
        let s2 = qy.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&u1);
        let r = s2.sub(&s1);
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::INFINITY
            };
        }
        let i = h.double().square();
        let j = h.mul(&i);
        let r = r.double();
        let v = u1.mul(&i);
        let x = r.square().sub(&j).sub(&v.double());
        let y = r.mul(&v.sub(&x)).sub(&s1.mul(&j).double());
        let z = self.z.add(&q.p.z).square().sub(&z1z1).sub(&q.zz).mul(&h);
        Jacobian { x, y, z }
    }

    /// P + Q for an affine Q, negated first when `negate` ("madd-2007-bl").
    pub(crate) fn add_affine(&self, q: &Affine, negate: bool) -> Jacobian {
        let qy = if negate { q.y.neg() } else { q.y };
        if self.is_infinity() {
            return Jacobian {
                x: q.x,
                y: qy,
                z: Fe::ONE,
            };
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = qy.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y);
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::INFINITY
            };
        }
        let hh = h.square();
        let i = hh.mul_small(4);
        let j = h.mul(&i);
        let r = r.double();
        let v = self.x.mul(&i);
        let x = r.square().sub(&j).sub(&v.double());
        let y = r.mul(&v.sub(&x)).sub(&self.y.mul(&j).double());
        let z = self.z.add(&h).square().sub(&z1z1).sub(&hh);
        Jacobian { x, y, z }
    }
}

/// P, 3P, 5P, …, (2^(w−1) − 1)P, appended to `out`.
pub(crate) fn odd_multiples(p: &Jacobian, w: u32, out: &mut Vec<Jacobian>) {
    let count = 1usize << (w - 2);
    let twice = Cached::new(&p.double());
    let mut last = *p;
    out.push(last);
    for _ in 1..count {
        last = last.add_cached(&twice, false);
        out.push(last);
    }
}

/// The affine forms of finite points with one field inversion (Montgomery's trick: invert
/// the product of all the Z, then peel each Z⁻¹ off it with two multiplications); `None`
/// when one of them is the point at infinity.
pub(crate) fn batch_to_affine(points: &[Jacobian]) -> Option<Vec<Affine>> {
    // before[i] = Z_0·…·Z_(i−1); `all` is the product of every Z.
    let mut before = Vec::with_capacity(points.len());
    let mut all = Fe::ONE;
    for p in points {
        if p.is_infinity() {
            return None;
        }
        before.push(all);
        all = all.mul(&p.z);
    }
    // inv = (Z_0·…·Z_i)⁻¹ at step i, walking down.
    let mut inv = all.invert();
    let mut out = Vec::with_capacity(points.len());
    for (p, b) in points.iter().zip(&before).rev() {
        let zinv = inv.mul(b);
        inv = inv.mul(&p.z);
        let zinv2 = zinv.square();
        out.push(Affine {
            x: p.x.mul(&zinv2),
            y: p.y.mul(&zinv2.mul(&zinv)),
        });
    }
    out.reverse();
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Test-only operations on points.
    impl Jacobian {
        pub(crate) fn neg(&self) -> Jacobian {
            Jacobian {
                x: self.x,
                y: self.y.neg(),
                z: self.z,
            }
        }

        /// P + Q for any two points ("add-2007-bl", with the equal and opposite cases).
        pub(crate) fn add(&self, q: &Jacobian) -> Jacobian {
            self.add_cached(&Cached::new(q), false)
        }

        /// The affine form of a finite point (one inversion).
        pub(crate) fn to_affine(self) -> Option<Affine> {
            if self.z.is_zero() {
                return None;
            }
            let zinv = self.z.invert();
            let zinv2 = zinv.square();
            Some(Affine {
                x: self.x.mul(&zinv2),
                y: self.y.mul(&zinv2.mul(&zinv)),
            })
        }
    }

    /// `k·P` by double-and-add over the bits of `k` (big-endian bytes): the plain reference.
    pub(crate) fn mul_plain(p: &Jacobian, k: &[u8]) -> Jacobian {
        let mut acc = Jacobian::INFINITY;
        for byte in k {
            for bit in (0..8).rev() {
                acc = acc.double();
                if (byte >> bit) & 1 == 1 {
                    acc = acc.add(p);
                }
            }
        }
        acc
    }

    fn g() -> Jacobian {
        Jacobian::from_affine(&Affine::generator().unwrap())
    }

    #[test]
    fn additions_handle_equal_opposite_and_infinite_points() {
        let g = g();
        let ga = g.to_affine().unwrap();
        let doubled = g.double().to_affine().unwrap();
        let via_add = g.add(&g).to_affine().unwrap();
        assert_eq!(doubled, via_add);
        let via_mixed = g.add_affine(&ga, false).to_affine().unwrap();
        assert_eq!(doubled, via_mixed);
        assert!(g.add(&g.neg()).is_infinity());
        assert!(g.add_affine(&ga, true).is_infinity());
        assert!(Jacobian::INFINITY.double().is_infinity());
        let back = Jacobian::INFINITY.add(&g).to_affine().unwrap();
        assert_eq!(back, ga);
        let back = Jacobian::INFINITY
            .add_affine(&ga, true)
            .to_affine()
            .unwrap();
        assert_eq!((back.x, back.y), (ga.x, ga.y.neg()));
    }

    #[test]
    fn odd_multiples_and_the_batch_inversion_agree_with_one_at_a_time() {
        let g = g();
        let mut points = Vec::new();
        odd_multiples(&g, 7, &mut points);
        assert_eq!(points.len(), 32);
        // 3G = 2G + G, and 63G = 64G − G.
        assert_eq!(
            points[1].to_affine().unwrap(),
            g.double().add(&g).to_affine().unwrap()
        );
        let mut sixty_four = g;
        for _ in 0..6 {
            sixty_four = sixty_four.double();
        }
        assert_eq!(
            points[31].to_affine().unwrap(),
            sixty_four.add(&g.neg()).to_affine().unwrap()
        );
        // Mixed Z (not all 1, not all equal): one inversion gives what one per point gives.
        points.push(points[5].double());
        let batch = batch_to_affine(&points).unwrap();
        assert_eq!(batch.len(), points.len());
        for (p, a) in points.iter().zip(&batch) {
            assert_eq!(p.to_affine().unwrap(), *a);
        }
        assert_eq!(batch_to_affine(&[]), Some(vec![]));
        points.push(Jacobian::INFINITY);
        assert_eq!(batch_to_affine(&points), None);
    }
}
