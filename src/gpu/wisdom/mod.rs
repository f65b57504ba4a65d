//! Measured kernel choices, apart from any device: what can be tuned for a shape
//! ([`candidates`]), the choices themselves ([`Choice`], one [`Family`] each), which shapes
//! share a choice ([`ShapeClass`]), the file the choices are saved in per adapter
//! ([`Wisdom`]), and how a tuner picks among timed candidates ([`search::tune`]).

mod candidates;
mod choice;
mod class;
mod file;
pub mod search;

pub use candidates::{candidates, recurrence_candidates};
pub use choice::{Choice, Family, Source, MAX_K_SPLITS};
pub use class::ShapeClass;
pub use file::{default_path, AdapterKey, Entry, Wisdom, TUNE_FILE_VAR, WISDOM_VERSION};
