//! Measured kernel choices, apart from any device: what can be tuned for a shape
//! ([`recurrence_candidates`]), which shapes share a choice ([`ShapeClass`]), the file the
//! choices are saved in per adapter ([`Wisdom`]), and how a tuner picks among timed
//! candidates ([`search::tune`]).

mod candidates;
mod class;
mod file;
pub mod search;

pub use candidates::recurrence_candidates;
pub use class::ShapeClass;
pub use file::{default_path, AdapterKey, Entry, Family, Wisdom, TUNE_FILE_VAR, WISDOM_VERSION};
