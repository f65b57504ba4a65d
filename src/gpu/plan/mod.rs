//! A GPU pass as data: the operations ([`Plan`], [`Op`], [`Dispatch`]) and the one place
//! that records or submits them, and the builder that collects a plan and creates its params
//! buffer and bind groups once.

mod builder;
mod ops;

pub(crate) use builder::{PlanBuilder, StepKernel};
pub use ops::{Dispatch, Op, Plan, ProfiledDispatch};
