//! What a request costs a limiter: one unit, or what a closure weighs it at.

/// The units a request spends (bytes, tokens, rows...). `0` is free: checked, never denied.
pub trait Cost<Req>: Clone {
    /// The cost of `req`.
    fn cost(&self, req: &Req) -> u32;
}

/// Every request costs one unit (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct One;

impl<Req> Cost<Req> for One {
    #[inline]
    fn cost(&self, _: &Req) -> u32 {
        1
    }
}

/// A closure `Fn(&Req) -> u32` as the cost (see [`cost_fn`]).
#[derive(Clone, Copy, Debug)]
pub struct CostFn<F>(F);

/// A closure `Fn(&Req) -> u32` as the cost.
pub fn cost_fn<F>(f: F) -> CostFn<F> {
    CostFn(f)
}

impl<Req, F: Fn(&Req) -> u32 + Clone> Cost<Req> for CostFn<F> {
    #[inline]
    fn cost(&self, req: &Req) -> u32 {
        (self.0)(req)
    }
}
