//! The candle custom-op plumbing shared by the fused ops whose output has their input's shape (LayerNorm, softmax, GELU) and by their VJPs.
//!
//! A file declares its op pair with one [`same_shape_ops!`]: names, kernels and the VJP; the
//! `CustomOp1` / `CustomOp2` impls (shape checks, the f32/f64 dispatch, the backward wiring)
//! are written here once for every op.

use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::{
    row_len, run_backward2, run_kernel1, run_kernel2, Backward2, Kernel1, Kernel2, Shaped,
};

/// A fused op on one tensor, or on two tensors of one shape, whose output has that shape.
pub(crate) trait SameShapeOp {
    /// The op's name for candle, e.g. `"wlm-softmax"`.
    const NAME: &'static str;
    /// The op's name in error messages, e.g. `"softmax"`.
    const WHAT: &'static str;
    /// Whether the kernels work on rows (the last dimension, which must then be non-empty; its
    /// length is the `Shaped` dimension) rather than entry by entry (`Shaped` dimension 0).
    const ROWS: bool;
}

/// A [`SameShapeOp`] `y = f(x)` whose backward is the VJP op [`UnaryWithVjp::vjp`] applied to
/// `(x, ȳ)`, or to `(y, ȳ)` when [`UnaryWithVjp::VJP_OF_RESULT`].
pub(crate) trait UnaryWithVjp: SameShapeOp {
    /// The VJP op.
    type Vjp: CustomOp2;
    /// Whether the VJP's first argument is the result `y` (softmax) rather than the input `x`.
    const VJP_OF_RESULT: bool;
    /// The VJP op of this op (same parameters).
    fn vjp(&self) -> Self::Vjp;
}

/// A VJP op `(a, ȳ) ↦ x̄` of a [`SameShapeOp`]: both arguments have one shape, and its backward
/// kernel ([`Backward2`]) reads `[a, ȳ, res, grad]` when [`SameShapeVjp::BACKWARD_READS_RESULT`],
/// otherwise `[a, ȳ, grad]`.
pub(crate) trait SameShapeVjp: SameShapeOp {
    /// Whether the backward kernel reads the op's own result.
    const BACKWARD_READS_RESULT: bool;
}

/// The `Shaped` dimension of `Op` for `shape`.
fn dim<Op: SameShapeOp>(shape: &Shape, what: &str) -> Result<usize> {
    if Op::ROWS {
        row_len(shape, what)
    } else {
        Ok(0)
    }
}

/// `op(a, b)` for two tensors of one shape (made contiguous), differentiable in both.
///
/// # Errors
/// When the shapes differ (`"<op>: shapes differ, …"`).
pub(crate) fn apply_same_shape<Op>(a: &Tensor, b: &Tensor, op: Op) -> Result<Tensor>
where
    Op: SameShapeOp + CustomOp2 + Send + Sync + 'static,
{
    if a.dims() != b.dims() {
        bail!(
            "{}: shapes differ, {:?} and {:?}",
            Op::WHAT,
            a.dims(),
            b.dims()
        );
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, op)
}

/// `CustomOp1::cpu_fwd` of a [`SameShapeOp`].
pub(crate) fn cpu_fwd1<Op>(
    op: &Op,
    storage: &CpuStorage,
    layout: &Layout,
) -> Result<(CpuStorage, Shape)>
where
    Op: SameShapeOp,
    for<'a> Shaped<'a, Op>: Kernel1,
{
    let d = dim::<Op>(layout.shape(), Op::WHAT)?;
    let out = run_kernel1(&Shaped(op, d), storage, layout, Op::WHAT)?;
    Ok((out, layout.shape().clone()))
}

/// `CustomOp1::bwd` of a [`UnaryWithVjp`]: its VJP op, without a backward of its own.
pub(crate) fn bwd1<Op: UnaryWithVjp>(
    op: &Op,
    arg: &Tensor,
    res: &Tensor,
    grad_res: &Tensor,
) -> Result<Option<Tensor>> {
    let first = if Op::VJP_OF_RESULT { res } else { arg };
    Ok(Some(
        first.apply_op2_no_bwd(&grad_res.contiguous()?, &op.vjp())?,
    ))
}

/// `CustomOp2::cpu_fwd` of a [`SameShapeVjp`].
pub(crate) fn cpu_fwd2<Op>(
    op: &Op,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
) -> Result<(CpuStorage, Shape)>
where
    Op: SameShapeVjp,
    for<'a> Shaped<'a, Op>: Kernel2,
{
    if l1.shape() != l2.shape() {
        bail!(
            "{}: shapes differ, {:?} and {:?}",
            Op::WHAT,
            l1.shape(),
            l2.shape()
        );
    }
    let d = dim::<Op>(l1.shape(), Op::WHAT)?;
    let out = run_kernel2(&Shaped(op, d), (s1, l1), (s2, l2), Op::WHAT)?;
    Ok((out, l1.shape().clone()))
}

/// `CustomOp2::bwd` of a [`SameShapeVjp`]: its [`Backward2`] kernel.
pub(crate) fn bwd2<Op>(
    op: &Op,
    a: &Tensor,
    b: &Tensor,
    res: &Tensor,
    grad_res: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)>
where
    Op: SameShapeVjp,
    for<'a> Shaped<'a, Op>: Backward2,
{
    let what = format!("{} backward", Op::WHAT);
    let d = dim::<Op>(a.shape(), &what)?;
    let inputs: &[&Tensor] = if Op::BACKWARD_READS_RESULT {
        &[a, b, res, grad_res]
    } else {
        &[a, b, grad_res]
    };
    let (a_bar, b_bar) = run_backward2(&Shaped(op, d), inputs, &what)?;
    Ok((Some(a_bar), Some(b_bar)))
}

/// Declares a fused op and its VJP op on tensors of one shape: their [`SameShapeOp`],
/// [`UnaryWithVjp`] and [`SameShapeVjp`] impls, their three kernels on `Shaped<Op>`
/// ([`Kernel1`], [`Kernel2`], [`Backward2`]) and candle's `CustomOp1` / `CustomOp2` through
/// [`cpu_fwd1`], [`bwd1`], [`cpu_fwd2`] and [`bwd2`].
///
/// Each kernel is written as a closure over the op, the `Shaped` dimension and the op's float
/// slices (of any `T: Float`); `vjp` makes the VJP op from the op.
macro_rules! same_shape_ops {
    (
        $op:ident($name:literal, $what:literal) => $vjp:ident($vjp_name:literal, $vjp_what:literal),
        rows: $rows:literal,
        vjp: |$s:ident| $make_vjp:expr,
        vjp_of_result: $of_result:literal,
        forward: |$fo:ident, $fd:ident, $x:ident| $forward:expr,
        vjp_forward: |$vo:ident, $vd:ident, $a:ident, $b:ident| $vjp_forward:expr,
        vjp_backward: |$bo:ident, $bd:ident, $inputs:ident| $vjp_backward:expr,
        backward_reads_result: $reads:literal $(,)?
    ) => {
        impl $crate::kernels::same_shape::SameShapeOp for $op {
            const NAME: &'static str = $name;
            const WHAT: &'static str = $what;
            const ROWS: bool = $rows;
        }

        impl $crate::kernels::same_shape::SameShapeOp for $vjp {
            const NAME: &'static str = $vjp_name;
            const WHAT: &'static str = $vjp_what;
            const ROWS: bool = $rows;
        }

        impl $crate::kernels::same_shape::UnaryWithVjp for $op {
            type Vjp = $vjp;
            const VJP_OF_RESULT: bool = $of_result;
            fn vjp(&self) -> $vjp {
                let $s = self;
                $make_vjp
            }
        }

        impl $crate::kernels::same_shape::SameShapeVjp for $vjp {
            const BACKWARD_READS_RESULT: bool = $reads;
        }

        impl $crate::kernels::Kernel1 for $crate::kernels::Shaped<'_, $op> {
            fn apply<T: $crate::kernels::float::Float>(
                &self,
                $x: &[T],
            ) -> candle_core::Result<Vec<T>> {
                let ($fo, $fd) = (self.0, self.1);
                Ok($forward)
            }
        }

        impl $crate::kernels::Kernel2 for $crate::kernels::Shaped<'_, $vjp> {
            fn apply<T: $crate::kernels::float::Float>(
                &self,
                $a: &[T],
                $b: &[T],
            ) -> candle_core::Result<Vec<T>> {
                let ($vo, $vd) = (self.0, self.1);
                Ok($vjp_forward)
            }
        }

        impl $crate::kernels::Backward2 for $crate::kernels::Shaped<'_, $vjp> {
            fn apply<T: $crate::kernels::float::Float>(
                &self,
                $inputs: &[&[T]],
            ) -> (Vec<T>, Vec<T>) {
                let ($bo, $bd) = (self.0, self.1);
                $vjp_backward
            }
        }

        impl candle_core::CustomOp1 for $op {
            fn name(&self) -> &'static str {
                <$op as $crate::kernels::same_shape::SameShapeOp>::NAME
            }

            fn cpu_fwd(
                &self,
                storage: &candle_core::CpuStorage,
                layout: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                $crate::kernels::same_shape::cpu_fwd1(self, storage, layout)
            }

            fn bwd(
                &self,
                arg: &candle_core::Tensor,
                res: &candle_core::Tensor,
                grad_res: &candle_core::Tensor,
            ) -> candle_core::Result<Option<candle_core::Tensor>> {
                $crate::kernels::same_shape::bwd1(self, arg, res, grad_res)
            }
        }

        impl candle_core::CustomOp2 for $vjp {
            fn name(&self) -> &'static str {
                <$vjp as $crate::kernels::same_shape::SameShapeOp>::NAME
            }

            fn cpu_fwd(
                &self,
                s1: &candle_core::CpuStorage,
                l1: &candle_core::Layout,
                s2: &candle_core::CpuStorage,
                l2: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                $crate::kernels::same_shape::cpu_fwd2(self, (s1, l1), (s2, l2))
            }

            fn bwd(
                &self,
                a: &candle_core::Tensor,
                b: &candle_core::Tensor,
                res: &candle_core::Tensor,
                grad_res: &candle_core::Tensor,
            ) -> candle_core::Result<(Option<candle_core::Tensor>, Option<candle_core::Tensor>)>
            {
                $crate::kernels::same_shape::bwd2(self, a, b, res, grad_res)
            }
        }
    };
}
pub(crate) use same_shape_ops;
