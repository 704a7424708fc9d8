//! Lab experiments of lisp-msx. `fig6`: resolution latency through LISP-MSX
//! against DDT (issue #6, section 5); see the crate's README.

pub mod fig6;
pub mod plot;
pub mod probe;
pub mod progress;
pub mod stats;
