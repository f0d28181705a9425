//! The main chain core's rules, driven through its public API: the optimae lifecycle,
//! rejections, headers, checkpoints, decoders and the threshold controller, in one test binary.

mod checkpoints;
mod common;
mod controller_sim;
mod decoders;
mod headers;
mod lifecycle;
mod rejections;
