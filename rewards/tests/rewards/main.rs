//! The rewards' own tests, one binary (each test binary links all of burn).

mod aesthetic;
mod clip_score;
mod gradients;
mod hps;
mod imagereward;
mod jpeg;
mod pag;
mod precision;
