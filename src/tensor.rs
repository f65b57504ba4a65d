//! A minimal host tensor: a row-major buffer and its shape.

use crate::error::{Error, Result};
use crate::host::{element_count, try_filled, try_with_capacity};

/// A dense row-major array on the host. The last dimension is contiguous.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T = f32> {
    shape: Vec<usize>,
    data: Vec<T>,
}

impl<T: Copy> Tensor<T> {
    /// Wraps `data` with `shape`; errors when the element count differs (or overflows).
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<T>) -> Result<Self> {
        let shape = shape.into();
        let expected = element_count("tensor", &shape, std::mem::size_of::<T>())?;
        if expected != data.len() {
            return Err(Error::DataLength {
                what: "tensor".into(),
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor of `shape` with every element `value`. For a shape from a user (a flag, a
    /// file), [`Tensor::try_full`] is the one that returns an error where the host cannot
    /// hold it; this one panics when the element count overflows `usize`, and the process
    /// aborts when the allocation fails.
    pub fn full(shape: impl Into<Vec<usize>>, value: T) -> Self {
        let shape = shape.into();
        let len = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .unwrap_or_else(|| panic!("Tensor::full: shape {shape:?} overflows usize"));
        Self {
            shape,
            data: vec![value; len],
        }
    }

    /// [`Tensor::full`], or [`Error::HostMemory`] naming the shape and its bytes when the
    /// element count overflows or the host cannot reserve the memory.
    pub fn try_full(shape: impl Into<Vec<usize>>, value: T) -> Result<Self> {
        let shape = shape.into();
        let len = element_count("tensor", &shape, std::mem::size_of::<T>())?;
        let data = try_filled(&format!("tensor {shape:?}"), len, value)?;
        Ok(Self { shape, data })
    }

    /// A tensor of `shape` whose elements are `f(i)` for `i` in `0..len`, in row-major order;
    /// [`Error::HostMemory`] (naming `what` and the shape) when the host cannot hold it.
    pub fn try_from_fn(
        what: &str,
        shape: impl Into<Vec<usize>>,
        f: impl FnMut(usize) -> T,
    ) -> Result<Self> {
        let shape = shape.into();
        let len = element_count(what, &shape, std::mem::size_of::<T>())?;
        let mut data = try_with_capacity(&format!("{what} {shape:?}"), len)?;
        data.extend((0..len).map(f));
        Ok(Self { shape, data })
    }

    /// The size of each dimension, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, writable (the shape stays).
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The elements in row-major order, without the shape.
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// The same data with another shape of the same element count.
    pub fn reshape(self, shape: impl Into<Vec<usize>>) -> Result<Self> {
        Self::new(shape, self.data)
    }

    /// Converts every element with `f`, keeping the shape.
    pub fn map<U: Copy>(&self, f: impl Fn(T) -> U) -> Tensor<U> {
        Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&x| f(x)).collect(),
        }
    }

    /// Errors unless the shape is exactly `expected`; `what` names the tensor.
    pub fn expect_shape(&self, what: &str, expected: &[usize]) -> Result<()> {
        if self.shape != expected {
            return Err(Error::Shape {
                what: what.into(),
                expected: expected.to_vec(),
                actual: self.shape.clone(),
            });
        }
        Ok(())
    }
}

/// Swaps the first two axes of a `[a, b, rest]` buffer: returns `[b, a, rest]`.
/// Used to move between batch-first and time-major layouts.
pub(crate) fn swap_leading_axes<T: Copy>(data: &[T], a: usize, b: usize, rest: usize) -> Vec<T> {
    // `data` exists: a copy of it is within what the callers' entry checks counted
    let mut out = Vec::with_capacity(data.len());
    for j in 0..b {
        for i in 0..a {
            let start = (i * b + j) * rest;
            out.extend_from_slice(&data[start..start + rest]);
        }
    }
    out
}
