//! The sjtest(1) of today: launch a jail with a probe inside, and check from
//! there that each promise of its policy holds on this kernel.

pub mod probe;
