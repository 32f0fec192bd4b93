//! Developer tooling, apart from the production code: synthetic data
//! (`switchboard seed`) and the benchmarks (`switchboard bench`, one file per
//! suite). The simulator is its own crate (`switchboard-sim`, re-exported as
//! [`crate::sim`]).

pub mod bench;
pub mod seed;
